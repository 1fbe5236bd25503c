"""What a dataset row may be: column types and unique ids on read, the row rules, and every reader applying
them (synthesis skips and reports, a row that disagrees with its image fails its attempts, export excludes,
the official import never writes one)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from export_fixtures import make_dataset, make_run, record

from minio3_data.errors import BadInputError
from minio3_data.exclusions import EXCLUDED_NAME, Exclusion, by_reason
from minio3_data.records import ProbeItem, read_items, write_items
from minio3_data.row_rules import row_problems, usable_items
from pipelines.build_visualprobe import build_visualprobe
from pipelines.export_llamafactory import export_run
from pipelines.synth_coldstart import SynthConfig, synth_coldstart

GOOD = ProbeItem(
    id="a", image="images/a.jpg", question="What color is the kite?", answer="B", options=["red", "blue"],
    target_bbox=[10.0, 20.0, 30.0, 40.0], width=640, height=480,
)  # fmt: skip


def test_a_good_row_has_no_problem() -> None:
    assert row_problems(GOOD) == [] and row_problems(GOOD, (640, 480)) == []
    assert row_problems(dataclasses.replace(GOOD, options=[], answer="red", target_bbox=None)) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"target_bbox": [600.0, 20.0, 5100.0, 40.0]}, "outside the 640x480 image"),
        ({"target_bbox": [-5.0, 20.0, 30.0, 40.0]}, "outside the 640x480 image"),
        ({"target_bbox": [10.0, 20.0, float("inf"), 40.0]}, "not finite"),
        ({"target_bbox": [10.0, 20.0, float("nan"), 40.0]}, "not finite"),
        ({"target_bbox": [10.0, 20.0, 30.0]}, "not 4 numbers"),
        ({"target_bbox": [30.0, 20.0, 10.0, 40.0]}, "no area"),
        ({"answer": "E"}, "answer 'E': not an option letter (A-B)"),
        ({"answer": "blue"}, "not an option letter"),
        ({"options": ["cat", "cat", "Cat", "cat"], "answer": "A"}, "the same option appears more than once"),
        ({"options": ["red"], "answer": "A"}, "1 of them"),
        ({"options": ["red", ""]}, "an option is empty"),
        ({"question": "  "}, "question: empty"),
        ({"answer": ""}, "answer: empty"),
        ({"id": None}, "id: empty"),
        ({"width": 0}, "width/height 0x480: not positive integers"),
        ({"image": "../../outside.jpg"}, "image '../../outside.jpg': not a path inside the dataset dir"),
        ({"image": "images/..\\..\\x.jpg"}, "not a path inside the dataset dir"),
        ({"image": "/etc/x.jpg"}, "image '/etc/x.jpg': not a path inside the dataset dir"),
        ({"image": "C:x.jpg"}, "not a path inside the dataset dir"),
    ],
)
def test_each_broken_rule_is_named(change: dict, reason: str) -> None:
    problems = row_problems(dataclasses.replace(GOOD, **change))
    assert any(reason in p for p in problems), problems


def test_a_row_is_checked_against_its_image() -> None:
    assert row_problems(GOOD, (1280, 960)) == ["width/height 640x480 but the image is 1280x960"]
    usable, rejected = usable_items([GOOD, dataclasses.replace(GOOD, id="b", question="")], "a stage")
    assert usable == [GOOD] and rejected == [Exclusion("a stage", "b", "empty question", "question: empty")]


def _write_columns(path: Path, **columns: pa.Array) -> Path:
    base = {"id": pa.array(["a", "b"]), "image": pa.array(["i.jpg", "i.jpg"]),
            "question": pa.array(["q?", "q?"]), "answer": pa.array(["x", "y"])}  # fmt: skip
    pq.write_table(pa.table({**base, **columns}), path)
    return path


@pytest.mark.parametrize(
    ("column", "values", "holds"),
    [
        ("question", pa.array([b"q?", b"r?"]), "binary"),
        ("question", pa.array([1, 2]), "int64"),
        ("target_bbox", pa.array(["[1, 2, 3, 4]", "[1, 2, 3, 4]"]), "string"),
        ("width", pa.array([640.0, 480.0]), "double"),
        ("options", pa.array(["red", "blue"]), "string"),
    ],
)
def test_a_column_of_the_wrong_type_is_one_line_naming_file_and_column(
    tmp_path, column, values, holds
) -> None:
    path = _write_columns(tmp_path / "train.parquet", **{column: values})
    with pytest.raises(BadInputError, match=rf"train.parquet: column '{column}' holds {holds}, expected"):
        read_items(path)


def test_compatible_columns_are_read(tmp_path: Path) -> None:
    """Large strings, int32 sizes and integer boxes are what other tools write: they mean the same."""
    table = pa.table({
        "id": pa.array(["a"], pa.large_string()), "image": ["i.jpg"], "question": ["q?"], "answer": ["x"],
        "width": pa.array([640], pa.int32()), "height": pa.array([480], pa.int32()),
        "target_bbox": pa.array([[1, 2, 3, 4]], pa.list_(pa.int32())),
    })  # fmt: skip
    pq.write_table(table, tmp_path / "train.parquet")
    [item] = read_items(tmp_path / "train.parquet")
    assert item.width == 640 and item.target_bbox == [1.0, 2.0, 3.0, 4.0]


def test_repeated_item_ids_refuse_the_dataset_naming_them(tmp_path: Path) -> None:
    b, c = dataclasses.replace(GOOD, id="b"), dataclasses.replace(GOOD, id="c")
    write_items(tmp_path / "train.parquet", [GOOD, b, GOOD, b, c])
    with pytest.raises(BadInputError, match=r"train.parquet: item id\(s\) 'a', 'b' appear more than once"):
        read_items(tmp_path / "train.parquet")


def _dataset_copy(tiny: Path, dest: Path, change) -> Path:
    """The tiny dataset with its train rows changed by `change(items)`."""
    shutil.copytree(tiny, dest)
    write_items(dest / "train.parquet", change(read_items(dest / "train.parquet")))
    return dest


def _cfg(dataset: Path, out: Path, **kw) -> SynthConfig:
    return SynthConfig(dataset=dataset, out=out, target=None, samples_per_item=1, progress=False, **kw)


def test_synthesis_skips_bad_rows_and_reports_each(tiny_dataset: Path, tmp_path: Path) -> None:
    def spoil(items: list[ProbeItem]) -> list[ProbeItem]:
        w = items[1].width
        items[1].target_bbox = [w + 100.0, 0.0, w + 200.0, 10.0]
        items[2].question = ""
        return items

    dataset = _dataset_copy(tiny_dataset, tmp_path / "vp", spoil)
    ids = [it.id for it in read_items(dataset / "train.parquet")]
    summary = synth_coldstart(_cfg(dataset, tmp_path / "run"))
    assert summary.attempts == len(ids) - 2
    first, second = summary.sampling.skipped
    assert (first.id, first.reason) == (ids[1], "bad target_bbox") and "outside the" in first.detail
    assert second == Exclusion("synth-coldstart", ids[2], "empty question", "question: empty")
    assert summary.sampling.exclusion_line().startswith("left out 2 (bad target_bbox: 1, empty question: 1), e.g. ")
    listed = [json.loads(line) for line in (tmp_path / "run" / EXCLUDED_NAME).read_text().splitlines()]
    assert listed == [first.to_dict(), second.to_dict()]
    assert json.loads((tmp_path / "run" / "stats.json").read_text())["excluded"]["count"] == 2
    lines = (tmp_path / "run" / "attempts.jsonl").read_text().splitlines()
    attempted = {json.loads(x)["item_id"] for x in lines}
    assert attempted == set(ids) - {ids[1], ids[2]}


def test_an_image_path_leaving_the_dataset_is_an_excluded_row_not_a_failed_attempt(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    """Such a row could never be played: it is left out (reason "bad image") and the file is never opened, so
    the run ends complete instead of retrying it on every rerun."""
    def escape(items: list[ProbeItem]) -> list[ProbeItem]:
        items[0].image = "../../outside.jpg"
        return items

    dataset = _dataset_copy(tiny_dataset, tmp_path / "vp", escape)
    first = read_items(dataset / "train.parquet")[0].id
    summary = synth_coldstart(_cfg(dataset, tmp_path / "run"))
    (skipped,) = summary.sampling.skipped
    assert (skipped.id, skipped.reason) == (first, "bad image")
    assert summary.sampling.failures == {} and summary.sampling.failure_line() is None


def test_a_dataset_with_no_usable_row_is_one_line(tiny_dataset: Path, tmp_path: Path) -> None:
    dataset = _dataset_copy(
        tiny_dataset, tmp_path / "vp", lambda items: [dataclasses.replace(it, answer="") for it in items]
    )
    with pytest.raises(
        BadInputError,
        match=r"no items to synthesise from \(every row is skipped, e\.g\. .*: answer: empty",
    ):
        synth_coldstart(_cfg(dataset, tmp_path / "run"))


def test_repeated_ids_and_bytes_questions_refuse_a_synthesis(tiny_dataset: Path, tmp_path: Path) -> None:
    dataset = _dataset_copy(tiny_dataset, tmp_path / "dup", lambda items: [*items, items[0]])
    with pytest.raises(BadInputError, match="appear more than once"):
        synth_coldstart(_cfg(dataset, tmp_path / "run"))
    table = pq.read_table(tiny_dataset / "train.parquet")
    shutil.copytree(tiny_dataset, tmp_path / "bytes")
    question = pa.array([q.encode() for q in table.column("question").to_pylist()])
    pq.write_table(
        table.set_column(table.schema.get_field_index("question"), "question", question),
        tmp_path / "bytes" / "train.parquet",
    )
    with pytest.raises(BadInputError, match="column 'question' holds binary"):
        synth_coldstart(_cfg(tmp_path / "bytes", tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_a_row_whose_size_disagrees_with_its_image_fails_its_attempts(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    def shrink(items: list[ProbeItem]) -> list[ProbeItem]:
        items[0].width, items[0].height = items[0].width // 2, items[0].height // 2
        items[0].target_bbox = None
        return items

    dataset = _dataset_copy(tiny_dataset, tmp_path / "vp", shrink)
    first = read_items(dataset / "train.parquet")[0]
    summary = synth_coldstart(_cfg(dataset, tmp_path / "run", limit=2))
    [(reason, n)] = summary.sampling.failures.items()
    assert n == 1 and reason.startswith(
        f"item {first.id}: width/height {first.width}x{first.height} but the image"
    )
    assert summary.sampling.failure_line().startswith("1 of 2 attempts failed: item ")


def test_export_excludes_a_trajectory_whose_row_is_broken(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "dataset")
    good = record(dataset, "images/scene0.jpg", [], tid="ok#0")
    resized = dataclasses.replace(
        record(dataset, "images/scene0.jpg", [], tid="resized#0"), width=450, height=300
    )
    beyond = record(dataset, "images/scene1.jpg", [], tid="beyond#0", answer="E")
    same = record(
        dataset, "images/scene1.jpg", [], tid="same#0", options=("cat", "cat", "cat", "cat"), answer="A"
    )
    run = make_run(tmp_path, [good, resized, beyond, same])
    summary = export_run(run, tmp_path / "out", workers=1, progress=False)
    assert summary.rows_written == 1
    assert by_reason(summary.excluded) == {"bad options": 1, "bad answer": 1, "bad width/height": 1}
    lines = (tmp_path / "out" / "excluded.jsonl").read_text().splitlines()
    listed = {e["id"]: e["detail"] for e in map(json.loads, lines)}
    assert listed["resized#0"] == "width/height 450x300 but the image is 900x600"
    assert "answer 'E': not an option letter (A-B)" in listed["beyond#0"]
    assert "the same option appears more than once" in listed["same#0"]


def test_the_official_import_never_writes_a_broken_row(tmp_path: Path) -> None:
    from test_build_official import released_layout

    root = released_layout(tmp_path / "release")
    path = root / "VisualProbe_train/train.json"
    rows = json.loads(path.read_text())
    rows[0]["problem"] = "<image>\n"
    rows[1]["problem"] = "<image>\nWhich sign?\nOptions:\nA. red\nB. red\nAnswer with the option's letter."
    rows[1]["solution"] = "C"
    path.write_text(json.dumps(rows))
    summary = build_visualprobe("official", tmp_path / "vp", from_dir=root, workers=1)
    reasons = {s.id: (s.reason, s.detail) for s in summary.skipped}
    assert reasons == {
        "official-train-0": ("empty question", "question: empty"),
        "official-train-1": ("bad options", "options: the same option appears more than once; "
                             "answer 'C': not an option letter (A-B)"),
    }  # fmt: skip
    assert [it.id for it in read_items(tmp_path / "vp" / "train.parquet")] == ["official-train-2"]
    listed = [json.loads(line) for line in (tmp_path / "vp" / EXCLUDED_NAME).read_text().splitlines()]
    assert listed == [s.to_dict() for s in summary.skipped]
