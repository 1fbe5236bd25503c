"""One way to drop a record (DESIGN invariant 7): every stage that leaves something out writes excluded.jsonl
records of one shape, its summary carries the same records, and the viewer counts them by reason."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from export_fixtures import make_dataset, make_run, record

from minio3_data.exclusions import EXCLUDED_NAME, Exclusion
from minio3_data.records import ProbeItem, read_items, write_items
from minio3_data.teacher_options import TeacherOptions
from pipelines.build_visualprobe import build_visualprobe
from pipelines.eval import eval_config, evaluate
from pipelines.export_llamafactory import export_run
from pipelines.synth_coldstart import SynthConfig, synth_coldstart
from pipelines.synth_coldstart.merge import merge_runs
from pipelines.view import build_site
from train.rl.data import write_rl_data

REQUIRED = {"stage", "id", "reason", "detail"}
OPTIONAL = {"split", "image"}


def _spoiled(tiny: Path, dest: Path) -> Path:
    """The tiny dataset with one train row whose box is outside its image and one test row with no question."""
    shutil.copytree(tiny, dest)
    for split, spoil in (("train", lambda it: setattr(it, "target_bbox", [it.width + 1.0, 0.0, it.width + 9.0, 9.0])),
                         ("test", lambda it: setattr(it, "question", ""))):  # fmt: skip
        items = read_items(dest / f"{split}.parquet")
        spoil(items[1])
        write_items(dest / f"{split}.parquet", items)
    return dest


def _synth(dataset: Path, out: Path, **kw: Any) -> Any:
    return synth_coldstart(SynthConfig(dataset=dataset, out=out, teacher="scripted", target=None,
                                       samples_per_item=1, progress=False, client=TeacherOptions(), **kw))  # fmt: skip


def _build(tiny: Path, tmp: Path) -> tuple[Path, Any]:
    from test_build_official import released_layout

    root = released_layout(tmp / "release")
    (root / "VisualProbe_train/images/t0.jpg").unlink()
    out = tmp / "vp"
    return out, build_visualprobe("official", out, from_dir=root, workers=1)


def _synth_with_a_damaged_line(tiny: Path, tmp: Path) -> tuple[Path, Any]:
    dataset, out = _spoiled(tiny, tmp / "vp"), tmp / "run"
    _synth(dataset, out, limit=3)
    log = out / "attempts.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    return out, _synth(dataset, out, limit=3).sampling


def _eval(tiny: Path, tmp: Path) -> tuple[Path, Any]:
    out = tmp / "eval"
    cfg = eval_config(_spoiled(tiny, tmp / "vp"), out, budgets=[2], k=1, teacher="scripted", progress=False,
                      client=TeacherOptions())  # fmt: skip
    return out, evaluate(cfg).sampling


def _merge(tiny: Path, tmp: Path) -> tuple[Path, Any]:
    dataset = _spoiled(tiny, tmp / "vp")
    shards = [tmp / "s0", tmp / "s1"]
    _synth(dataset, shards[0], shard=(0, 2))
    _synth(dataset, shards[1], shard=(0, 2))  # the same shard twice: every attempt is a duplicate
    out = tmp / "merged"
    return out, merge_runs(shards, out)


def _export(tiny: Path, tmp: Path) -> tuple[Path, Any]:
    dataset = make_dataset(tmp / "dataset")
    good = record(dataset, "images/scene0.jpg", [], tid="ok#0")
    wrong = record(dataset, "images/scene0.jpg", [], tid="wrong#0", verdict="wrong")
    out = tmp / "sft"
    return out, export_run(make_run(tmp, [good, wrong]), out, workers=1, progress=False)


def _train_rl(tiny: Path, tmp: Path) -> tuple[Path, Any]:
    out = tmp / "data"
    return out, write_rl_data(_spoiled(tiny, tmp / "vp"), out, agent_name="minio3_zoom")


def _records(summary: Any) -> list[Exclusion]:
    """The summary's typed records: `skipped` where a stage skips dataset rows, `excluded` where it excludes."""
    return getattr(summary, "skipped", None) or summary.excluded


STAGES: dict[str, tuple[Callable[[Path, Path], tuple[Path, Any]], set[str]]] = {
    "build-visualprobe": (_build, {"bad image"}),
    "synth-coldstart": (_synth_with_a_damaged_line, {"bad target_bbox", "damaged line"}),
    "eval": (_eval, {"empty question"}),
    "merge-runs": (_merge, {"bad target_bbox", "duplicate attempt"}),
    "export-llamafactory": (_export, {"not correct"}),
    "train-rl": (_train_rl, {"bad target_bbox", "empty question"}),
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_lists_what_it_left_out_in_one_shape(stage: str, tiny_dataset: Path, tmp_path: Path) -> None:
    run_stage, reasons = STAGES[stage]
    out, summary = run_stage(tiny_dataset, tmp_path)
    listed = [json.loads(line) for line in (out / EXCLUDED_NAME).read_text().splitlines()]
    assert listed and all(REQUIRED <= set(r) <= REQUIRED | OPTIONAL for r in listed), listed
    assert all(isinstance(v, str) and v for r in listed for v in r.values())
    assert {r["stage"] for r in listed} == {stage}
    assert {r["reason"] for r in listed} == reasons  # short categories; the specifics are in `detail`
    records = _records(summary)
    assert [r.to_dict() for r in records] == listed  # the summary carries the same records, typed
    line = summary.exclusion_line()
    assert line.startswith(f"left out {len(listed)} (") and str(out / EXCLUDED_NAME) in line


def test_the_viewer_shows_the_reason_of_an_excluded_export_row(tiny_dataset: Path, tmp_path: Path) -> None:
    export, _ = _export(tiny_dataset, tmp_path)
    build_site(export, tmp_path / "site", workers=1, progress=False)
    index = (tmp_path / "site" / "index.html").read_text()
    assert "1 (not correct: 1); see " in index and "?: 1" not in index
    # an export made before the one record wrote the reason as `rule`: still counted by it
    old = [{"id": r["id"], "rule": "not_correct", "detail": r["detail"]}
           for r in map(json.loads, (export / EXCLUDED_NAME).read_text().splitlines())]  # fmt: skip
    (export / EXCLUDED_NAME).write_text("".join(json.dumps(r) + "\n" for r in old))
    build_site(export, tmp_path / "old-site", workers=1, progress=False)
    assert "1 (not_correct: 1); see " in (tmp_path / "old-site" / "index.html").read_text()


def test_a_dataset_site_counts_what_the_build_left_out_by_reason(tiny_dataset: Path, tmp_path: Path) -> None:
    dataset, _ = _build(tiny_dataset, tmp_path)
    build_site(dataset, tmp_path / "site", workers=1, progress=False)
    assert "1 (bad image: 1); see " in (tmp_path / "site" / "index.html").read_text()


def test_a_rows_reason_is_its_first_problems_field() -> None:
    from minio3_data.row_rules import row_problems, row_reason

    good = ProbeItem(id="a", image="i.jpg", question="q?", answer="B", options=["x", "y"], width=640, height=480)
    cases = {
        "empty question": dataclasses.replace(good, question=""),
        "bad answer": dataclasses.replace(good, answer="Z"),
        "bad options": dataclasses.replace(good, options=["x", "x"]),
        "bad width/height": dataclasses.replace(good, width=0),
        "bad target_bbox": dataclasses.replace(good, target_bbox=[0.0, 0.0, 900.0, 9.0]),
    }
    assert {reason: row_reason(row_problems(item)) for reason, item in cases.items()} == {r: r for r in cases}
    assert row_reason(["a 9x9 view has no pixels"]) == "bad row"  # a problem that names no field
