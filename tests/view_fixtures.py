"""Inputs for the `minio3 view` tests: a real scripted run on the tiny dataset, a real eval against a loopback
policy that plays a script, and reading a built site."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from loopback_teacher import LoopbackTeacher, Plan, planned
from PIL import Image

from minio3_data.records import ProbeItem, Trajectory, write_items
from minio3_data.teacher_options import TeacherOptions
from pipelines.eval import eval_config, evaluate
from pipelines.synth_coldstart import SynthConfig, synth_coldstart
from pipelines.view import build_site
from pipelines.view.site import page_rel

KITE = "What colour is the kite?"
EVAL_BUDGETS = [1, 2, 4]
# the eval's five trajectories, (zooms before answering or None: for ever, answer or None: no action), and the
# outcome each has at budgets 1, 2 and 4, worked by hand from the one-pass rule (docs/eval.md): n turns
# score at budget t what they scored at 4 when n <= t, and are over-turn at t when n > t
KITE_PLANS: list[Plan] = [(0, "red"), (2, "red"), (1, "blue"), (None, None), (0, None)]
EVAL_OUTCOMES = {  # (final answer, turns) -> the outcome by budget
    ("red", 1): "correct at every budget",
    ("red", 3): "over-turn at 1-2; correct at 4",
    ("blue", 2): "over-turn at 1; wrong from 2",
    (None, 4): "over-turn at every budget",
    (None, 1): "void at every budget",
}
PORTRAIT = (900, 1800)  # the first view is as tall as the original: a picture a page must show smaller


def scripted_run(dataset: Path, out: Path) -> Path:
    """Two scripted attempts per training item, some of them wrong (error_rate), so every status and verdict
    filter has rows on both sides."""
    synth_coldstart(SynthConfig(
        dataset=dataset, out=out, teacher="scripted", target=None, samples_per_item=2, concurrency=4,
        progress=False, seed=5, error_rate=0.3, client=TeacherOptions(),
    ))  # fmt: skip
    return out


def attempts(run: Path) -> list[Trajectory]:
    """The run's attempts, last line per (item, sample), as the viewer lists them."""
    latest: dict[tuple[str, int], Trajectory] = {}
    for line in (run / "attempts.jsonl").read_text().splitlines():
        t = Trajectory.from_dict(json.loads(line))
        latest[(t.item_id, t.sample_index)] = t
    return [latest[k] for k in sorted(latest)]


def page_of(site: Path, entry_id: str) -> Path:
    return site / page_rel(entry_id)


def image_sources(html: str) -> list[str]:
    return re.findall(r'<img[^>]* src="([^"]+)"', html)


def text_of(fragment: str) -> str:
    """What a piece of a page reads as: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def index_table(site: Path) -> dict[str, dict[str, str]]:
    """The index's rows as a person reads them: entry id -> {column heading: cell text}."""
    page = (site / "index.html").read_text()
    table = page[page.index('<table class="index" id="entries">') :]
    heads = [text_of(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table[: table.index("</thead>")])]
    rows = {}
    for row in re.findall(r"<tr data-v=.*?</tr>", table):
        cells = dict(zip(heads, (text_of(c) for c in re.findall(r"<td>(.*?)</td>", row))))
        rows[cells["id"]] = cells
    return rows


def planned_eval(root: Path) -> Path:
    """`minio3 eval` of one open question on a tall picture, k = 5 at budgets 1, 2, 4, against a loopback
    server playing KITE_PLANS: every outcome of EVAL_OUTCOMES once."""
    (root / "data/images").mkdir(parents=True)
    Image.new("RGB", PORTRAIT, (40, 120, 200)).save(root / "data/images/sky.jpg", quality=90)
    item = ProbeItem("kite", "images/sky.jpg", KITE, "red", target_bbox=[400.0, 800.0, 440.0, 840.0],
                     width=PORTRAIT[0], height=PORTRAIT[1])  # fmt: skip
    write_items(root / "data/test.parquet", [item])
    with LoopbackTeacher(planned({KITE: KITE_PLANS})) as server:
        client = TeacherOptions(model="policy", base_urls=[server.openai_url], api_key_env="NONE", timeout=5)
        evaluate(eval_config(root / "data", root / "eval", budgets=EVAL_BUDGETS, k=len(KITE_PLANS),
                             teacher="openai", progress=False, concurrency=5, client=client))  # fmt: skip
    return root / "eval"


def planned_eval_site(root: Path) -> tuple[Path, Path]:
    """planned_eval's eval dir under `root` and its site."""
    out = planned_eval(root)
    build_site(out, root / "site", workers=1, progress=False)
    return out, root / "site"
