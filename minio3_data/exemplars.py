"""Exemplars: hand-made solved searches a teacher sees in context, loaded and validated.

An exemplar dir holds, per exemplar, one JSON file and the image it names:

    {
      "id": "dfs-1",
      "pattern": "depth_first",                 # depth_first | trial_and_error | goal_maintenance
      "image": "dfs-1.jpg",                     # relative to the dir
      "question": "What is written on the cyan sign with a black border?",
      "options": [],                            # empty when open-ended
      "answer": "CY",                           # ground truth (the option letter for multiple choice)
      "target_bbox": [1963, 1066, 1989, 1085],  # the target in original pixels (x0, y0, x1, y1)
      "scene": {...},                           # optional provenance (generator, seed, ...)
      "turns": [
        {"thought": "...", "zoom": {"bbox_2d": [0.7, 0.6, 1.0, 1.0], "source": "original_image"}},
        {"thought": "...", "answer": "CY"}
      ]
    }

Every turn but the last is a zoom in the protocol's own language; the last is the answer. Loading checks
the format, every box (the same geometry ZoomEnv executes), that the last observation contains the
target and that the answer is right, so a broken exemplar never reaches a teacher's prompt. Problems
are one line each, naming the file and the field.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import BadInputError, Minio3Error
from .fsutil import file_hash, safe_relpath
from .images import OriginalCache, image_size
from .judge import rule_judge
from .profiles import DEFAULT, ProtocolProfile
from .profiles.minio3 import PROFILE as EXPLAINING  # an author gets the messages that say how to fix a box
from .protocol import Answer, Malformed, Zoom, render_turn
from .records import Turn
from .zoom import Observation, PixelBox, ZoomEnv, crop_box

# The search strategies an exemplar demonstrates and the scripted teacher plays.
SEARCH_PATTERNS: tuple[str, ...] = ("depth_first", "trial_and_error", "goal_maintenance")
FIELDS = ("id", "pattern", "image", "question", "options", "answer", "target_bbox", "scene", "turns")
TURN_FIELDS = ("thought", "zoom", "answer")
MAX_TURNS = 16
_TAG_RE = re.compile(r"</?(?:think|grounding|answer)>|<image>")


@dataclass(frozen=True)
class Step:
    """One hand-written turn: the thought and the action it ends with."""

    thought: str
    action: Zoom | Answer


@dataclass
class Exemplar:
    id: str
    pattern: str
    question: str
    options: list[str]
    answer: str
    image: Path  # resolved image file
    target_bbox: tuple[float, float, float, float]
    steps: list[Step]
    file: Path  # the JSON it came from
    width: int = 0
    height: int = 0
    turns: list[Turn] = field(default_factory=list)  # as a trajectory records them, for render.conversation


def shipped_dir() -> Path:
    """The six exemplars that ship with minio3."""
    return Path(str(resources.files("exemplars")))


BUILTIN = "builtin"  # how a run's identity names the shipped six


def set_identity(directory: str | Path | None = None) -> str:
    """Which exemplar set a dir holds, by content, for a run's identity: "builtin" for the shipped six however
    they are named (default or by path), else a digest of every exemplar's JSON and image bytes. A copied or
    moved set is the same set; an edited one is not."""
    digest = _set_digest(directory)
    return BUILTIN if digest == _set_digest(None) else digest


def _set_digest(directory: str | Path | None) -> str:
    h = hashlib.sha256()
    for exemplar in load_exemplars(directory):
        h.update(f"{exemplar.file.name}\0{file_hash(exemplar.file)}\0{file_hash(exemplar.image)}\0".encode())
    return h.hexdigest()[:16]


def exemplar_files(directory: str | Path | None = None) -> list[Path]:
    directory = Path(directory) if directory is not None else shipped_dir()
    if not directory.is_dir():
        raise BadInputError(f"{directory}: no such exemplar directory")
    files = sorted(directory.glob("*.json"))
    if not files:
        raise BadInputError(f"{directory}: no exemplar JSON files (one <id>.json + its image per exemplar)")
    return files


class _Problems(list[str]):
    def __init__(self, file: Path) -> None:
        super().__init__()
        self.file = file

    def add(self, where: str, message: str) -> None:
        self.append(f"{self.file}: {where}: {message}")


def _text(data: dict[str, Any], key: str, problems: _Problems, where: str = "") -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        problems.add(where + key, "missing or empty; a non-empty string is required")
        return ""
    return value.strip()


def _options(data: dict[str, Any], problems: _Problems) -> list[str]:
    options = data.get("options", [])
    if not isinstance(options, list) or not all(isinstance(o, str) and o.strip() for o in options):
        problems.add("options", "must be a list of non-empty strings ([] when open-ended)")
        return []
    return [o.strip() for o in options]


def _target(data: dict[str, Any], size: tuple[int, int] | None, problems: _Problems) -> tuple[float, ...]:
    box = data.get("target_bbox")
    numbers = (
        isinstance(box, list)
        and len(box) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
    )
    if not numbers:
        problems.add("target_bbox", "must be four numbers [x0, y0, x1, y1] in original pixels")
        return ()
    x0, y0, x1, y1 = (float(v) for v in box)  # type: ignore[union-attr]
    if not (x0 < x1 and y0 < y1) or (size and not (0 <= x0 and 0 <= y0 and x1 <= size[0] and y1 <= size[1])):
        problems.add(
            "target_bbox",
            f"{box} is not a box inside the {size[0]}x{size[1]} image" if size else f"{box} is empty",
        )
        return ()
    return x0, y0, x1, y1


def _step(turn: Any, where: str, problems: _Problems) -> Step | None:
    if not isinstance(turn, dict):
        problems.add(
            where, 'must be an object {"thought": ..., "zoom": {...}} or {"thought": ..., "answer": ...}'
        )
        return None
    for key in sorted(set(turn) - set(TURN_FIELDS)):
        problems.add(f"{where}.{key}", f"unknown field; a turn has {', '.join(TURN_FIELDS)}")
    thought = _text(turn, "thought", problems, f"{where}.")
    if _TAG_RE.search(thought):
        problems.add(f"{where}.thought", "must be plain prose; the tags are added when the turn is rendered")
    if ("zoom" in turn) == ("answer" in turn):
        problems.add(where, 'needs exactly one action: "zoom" or "answer"')
        return None
    if "answer" in turn:
        answer = _text(turn, "answer", problems, f"{where}.")
        return Step(thought, Answer(answer)) if thought and answer else None
    action = EXPLAINING.parse_turn(f"<grounding>{json.dumps(turn['zoom'])}</grounding>")
    if isinstance(action, Malformed):
        problems.add(f"{where}.zoom", action.reason)
        return None
    return Step(thought, action) if thought else None


def _steps(data: dict[str, Any], problems: _Problems) -> list[Step]:
    turns = data.get("turns")
    if not isinstance(turns, list) or not 2 <= len(turns) <= MAX_TURNS:
        problems.add("turns", f"must be a list of 2 to {MAX_TURNS} turns: zooms, then one answer")
        return []
    steps = [_step(t, f"turns[{i}]", problems) for i, t in enumerate(turns)]
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if step is not None and isinstance(step.action, Answer) != last:
            problems.add(
                f"turns[{i}]", "the answer must be the last turn" if not last else "the last turn must answer"
            )
    return [s for s in steps if s is not None]


def _replay_geometry(
    steps: list[Step], size: tuple[int, int], target: tuple[float, ...], problems: _Problems
) -> list[Turn]:
    """Each zoom's box on the original (ZoomEnv's geometry, no pixels), and the target in the last view."""
    boxes: list[PixelBox] = [(0, 0, *size)]
    turns: list[Turn] = []
    for i, step in enumerate(steps):
        text = render_turn(step.thought, step.action)
        if isinstance(step.action, Answer):
            turns.append(Turn(text, "answer", answer=step.action.text))
            continue
        zoom = step.action
        index = EXPLAINING.source_index(zoom.source, len(boxes) - 1)
        if isinstance(index, str):
            problems.add(f"turns[{i}].zoom.source", index)
            return []
        box = crop_box(boxes[index], zoom.bbox, EXPLAINING)
        if isinstance(box, str):
            problems.add(f"turns[{i}].zoom.bbox_2d", box)
            return []
        boxes.append(box)
        turns.append(
            Turn(
                text,
                "zoom",
                bbox=list(zoom.bbox),
                source=zoom.source,
                box_px=list(box),
                observation=len(boxes) - 1,
            )
        )
    last = boxes[-1]
    if target and not (
        last[0] <= target[0] and last[1] <= target[1] and target[2] <= last[2] and target[3] <= last[3]
    ):
        problems.add(
            f"turns[{len(steps) - 2}].zoom",
            f"the last observation {list(last)} does not contain the target_bbox {[round(v) for v in target]}; "
            "the answer must be read from a view that shows the target",
        )
    return turns


def read_exemplar(file: Path) -> tuple[Exemplar | None, list[str]]:
    """One exemplar and every problem found in it (an exemplar only when there are none)."""
    problems = _Problems(file)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as e:
        return None, [f"{file}: cannot read ({e.strerror})"]
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, [f"{file}: not valid JSON ({e})"]
    except RecursionError:
        return None, [f"{file}: JSON nested too deeply to be an exemplar"]
    if not isinstance(data, dict):
        return None, [f"{file}: must be a JSON object"]
    for key in sorted(set(data) - set(FIELDS)):
        problems.add(key, f"unknown field; expected {', '.join(FIELDS)}")
    ex_id, question, answer = (_text(data, k, problems) for k in ("id", "question", "answer"))
    pattern = _text(data, "pattern", problems)
    if pattern and pattern not in SEARCH_PATTERNS:
        problems.add("pattern", f"{pattern!r} is not one of {', '.join(SEARCH_PATTERNS)}")
    options = _options(data, problems)
    image, size = None, None
    if _text(data, "image", problems):
        try:
            image = safe_relpath(file.parent, data["image"], "image")
            size = image_size(image)
        except Minio3Error as e:
            problems.add("image", str(e))
    target = _target(data, size, problems)
    before = len(problems)
    steps = _steps(data, problems)
    if len(problems) > before or image is None or size is None:
        return None, list(problems)  # the turns themselves are broken: geometry would mislead
    turns = _replay_geometry(steps, size, target, problems)
    final = steps[-1].action
    assert isinstance(final, Answer)
    if answer and not rule_judge(final.text, answer, options).correct:
        problems.add(
            f"turns[{len(steps) - 1}].answer", f"{final.text!r} is not the correct answer {answer!r}"
        )
    if problems:
        return None, list(problems)
    box = (target[0], target[1], target[2], target[3])
    return Exemplar(ex_id, pattern, question, options, answer, image, box, steps, file, *size, turns), []


def load_exemplars(directory: str | Path | None = None) -> list[Exemplar]:
    """Every exemplar of a dir (default: the shipped six); the first problem is a one-line error."""
    exemplars: list[Exemplar] = []
    for file in exemplar_files(directory):
        exemplar, problems = read_exemplar(file)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise BadInputError(
                f"{problems[0]}{more}; `minio3 exemplars check {file.parent}` lists every problem"
            )
        assert exemplar is not None
        if any(e.id == exemplar.id for e in exemplars):
            raise BadInputError(
                f"{file}: id: {exemplar.id!r} is used by another exemplar; ids must be unique"
            )
        exemplars.append(exemplar)
    return exemplars


def replay_exemplar(
    exemplar: Exemplar, cache: OriginalCache | None = None, protocol: ProtocolProfile = DEFAULT
) -> list[Observation]:
    """The observations the exemplar's turns see (index 0 = first view), through the real ZoomEnv, at the
    display sizes of `protocol`."""
    return ZoomEnv(exemplar.image, cache=cache, protocol=protocol).replay(exemplar.turns)
