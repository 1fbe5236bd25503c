"""`minio3 exemplars check`: replay every exemplar through ZoomEnv and show it on one HTML page.

Each exemplar is validated (format, every box, the target inside the last observation, the answer) and
replayed through the real ZoomEnv, so the page shows exactly the images a teacher is sent: the first view
with every zoom box drawn and numbered, then each turn's thought, action and observation. Problems are
one line each, naming the file, the turn and what is wrong.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from minio3_data.errors import Minio3Error
from minio3_data.exemplars import Exemplar, exemplar_files, read_exemplar, replay_exemplar, shipped_dir
from minio3_data.fsutil import atomic_write_text
from minio3_data.images import OriginalCache, encode_jpeg
from minio3_data.profiles import DEFAULT, ProtocolProfile
from minio3_data.protocol import OPTION_LETTERS, render_action
from minio3_data.zoom import Observation

from .view.draw import DrawnBox, box_color, draw_boxes

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }
section { border-top: 2px solid #888; margin-top: 2em; padding-top: 1em; }
.ok { color: #1a7f37; } .bad { color: #c62828; }
.problems li { color: #c62828; font-family: monospace; }
.turn { display: flex; gap: 1.5em; margin: 1em 0; align-items: flex-start; }
.turn .text { flex: 1; } .turn img { max-width: 480px; border: 1px solid #999; }
code { background: #f3f3f3; padding: 0.1em 0.3em; display: inline-block; }
.overview { max-width: 100%; border: 1px solid #999; }
"""


@dataclass
class CheckResult:
    exemplars: int  # files checked
    problems: list[str]  # one line each; empty when the set is good
    html: Path


def _data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _overview(exemplar: Exemplar, observations: list[Observation]) -> bytes:
    """The first view with every zoom box (numbered by the observation it made) and the target drawn."""
    boxes = [DrawnBox(obs.box, str(obs.index), box_color(obs.index)) for obs in observations[1:]]
    image = draw_boxes(observations[0].image, (exemplar.width, exemplar.height), boxes, exemplar.target_bbox)
    return encode_jpeg(image, quality=85)


def _section(
    file: Path, exemplar: Exemplar | None, observations: list[Observation], problems: list[str]
) -> str:
    title = html.escape(exemplar.id if exemplar else file.name)
    status = (
        '<span class="ok">OK</span>'
        if not problems
        else f'<span class="bad">{len(problems)} problem(s)</span>'
    )
    parts = [f"<section><h2>{title} &mdash; {status}</h2>"]
    if problems:
        parts.append(
            '<ul class="problems">' + "".join(f"<li>{html.escape(p)}</li>" for p in problems) + "</ul>"
        )
    if exemplar is None or not observations:
        return "".join(parts) + "</section>"
    options = "".join(f"<br>{OPTION_LETTERS[i]}. {html.escape(o)}" for i, o in enumerate(exemplar.options))
    parts.append(
        f"<p><b>Pattern:</b> {exemplar.pattern} &nbsp; <b>Image:</b> {html.escape(exemplar.image.name)} "
        f"({exemplar.width}&times;{exemplar.height}) &nbsp; <b>Target:</b> {[round(v) for v in exemplar.target_bbox]} "
        f"(yellow)</p><p><b>Question:</b> {html.escape(exemplar.question)}{options}<br>"
        f"<b>Answer:</b> {html.escape(exemplar.answer)}</p>"
        f'<img class="overview" src="{_data_url(_overview(exemplar, observations))}" '
        'alt="first view with every zoom box">'
    )
    for i, (step, turn) in enumerate(zip(exemplar.steps, exemplar.turns)):
        image = ""
        if turn.observation is not None:
            obs = observations[turn.observation]
            w, h = obs.size
            image = (
                f'<figure><img src="{_data_url(obs.jpeg())}" alt="observation {obs.index}"><figcaption>'
                f"Observation {obs.index}: box {list(obs.box)} of the original, shown at {w}&times;{h}"
                "</figcaption></figure>"
            )
        parts.append(
            f'<div class="turn"><div class="text"><h3>Turn {i}</h3><p>{html.escape(step.thought)}</p>'
            f"<code>{html.escape(render_action(step.action))}</code></div>{image}</div>"
        )
    return "".join(parts) + "</section>"


def check_exemplars(
    directory: str | Path | None = None, out: str | Path | None = None, protocol: ProtocolProfile = DEFAULT
) -> CheckResult:
    """Check every exemplar of `directory` (default: the shipped six) and write the HTML page, with each
    observation at the display size of `protocol`.

    The page goes to `out`, or DIR/check.html, or ./exemplars_check.html for the shipped set (whose
    directory may be read-only).
    """
    files = exemplar_files(directory)
    if out is None:
        out = Path(directory) / "check.html" if directory is not None else Path("exemplars_check.html")
    cache = OriginalCache()
    seen: dict[str, Path] = {}
    sections: list[str] = []
    problems: list[str] = []
    for file in tqdm(files, desc="exemplars", unit="exemplar", leave=False):
        exemplar, found = read_exemplar(file)
        observations: list[Observation] = []
        if exemplar is not None:
            if exemplar.id in seen:
                found.append(
                    f"{file}: id: {exemplar.id!r} is also the id of {seen[exemplar.id]}; ids must be unique"
                )
            seen.setdefault(exemplar.id, file)
            try:
                observations = replay_exemplar(exemplar, cache, protocol)
            except Minio3Error as e:
                found.append(f"{file}: image: {e}")
        try:
            section = _section(file, exemplar, observations, found)
        except Minio3Error as e:  # pixels are decoded as the page is drawn: a truncated image shows up here
            found.append(f"{file}: image: {e}")
            section = _section(file, exemplar, [], found)
        sections.append(section)
        problems.extend(found)
    where = html.escape(str(Path(directory) if directory is not None else shipped_dir()))
    summary = (
        f'<p class="ok">All {len(files)} exemplars are valid.</p>'
        if not problems
        else f'<p class="bad">{len(problems)} problem(s) in {len(files)} exemplar file(s).</p>'
    )
    page = (
        f'<!doctype html><html><head><meta charset="utf-8"><title>minio3 exemplars: {where}</title>'
        f"<style>{STYLE}</style></head><body><h1>Exemplars in {where}</h1>"
        f"<p>Observations as the <b>{protocol.name}</b> protocol shows them.</p>{summary}{''.join(sections)}</body></html>"
    )
    atomic_write_text(out, page)
    return CheckResult(len(files), problems, Path(out))
