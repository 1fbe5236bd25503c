"""--source official and --emit-mini-o3-json: the released Mini-o3 layout, both ways."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from minio3_data.errors import BadInputError
from minio3_data.exclusions import EXCLUDED_NAME
from minio3_data.protocol import IMAGE_PLACEHOLDER, question_text
from minio3_data.records import read_items
from pipelines.build_visualprobe import build_visualprobe
from pipelines.build_visualprobe.official import split_options


def _image(path: Path, size: tuple[int, int] = (640, 480)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (120, 80, 40)).save(path)


def _record(image: str, problem: str, solution: Any, source: str, doc_id: Any) -> dict[str, Any]:
    return {
        "images": [image],
        "problem": problem,
        "solution": solution,
        "data_source": source,
        "doc_id": doc_id,
    }


def released_layout(root: Path) -> Path:
    """A small released-layout tree: a train file and three val files, images relative to root."""
    train = [
        _record(
            f"VisualProbe_train/images/t{i}.jpg",
            f"<image>\nWhat is on sign {i}?",
            f"K{i}",
            "visual_probe_train",
            i,
        )
        for i in range(3)
    ]
    files = {"VisualProbe_train/train.json": train}
    for d, size in (("Easy", (640, 480)), ("Medium", (1600, 1200)), ("Hard", (4000, 3000))):
        rec = _record(
            f"VisualProbe_{d}/images/v.jpg",
            "<image>\nWhat color is the kite?",
            "red",
            f"visual_probe_{d.lower()}",
            0,
        )
        files[f"VisualProbe_{d}/val.json"] = [rec]
        _image(root / f"VisualProbe_{d}/images/v.jpg", size)
    for rel, rows in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(json.dumps(rows))
    for i in range(3):
        _image(root / f"VisualProbe_train/images/t{i}.jpg")
    return root


def test_import_strips_image_and_takes_difficulty_from_data_source(tmp_path: Path) -> None:
    root = released_layout(tmp_path / "release")
    out = tmp_path / "vp"
    summary = build_visualprobe("official", out, from_dir=root, workers=1)
    assert summary.counts == {"train": 3, "test": 3} and summary.skipped == []
    train, test = read_items(out / "train.parquet"), read_items(out / "test.parquet")
    assert {it.difficulty for it in test} == {"easy", "medium", "hard"}
    assert {it.difficulty for it in train} == {"unknown"}
    assert (
        train[1].question == "What is on sign 1?"
        and train[1].answer == "K1"
        and train[1].id == "official-train-1"
    )
    for it in train + test:
        assert IMAGE_PLACEHOLDER not in it.question and it.target_bbox is None and it.source == "official"
        assert (out / it.image).is_file()
    hard = next(it for it in test if it.difficulty == "hard")
    assert (hard.width, hard.height) == (4000, 3000)


def test_split_options_inverts_question_text() -> None:
    q, opts = "What color is the striped star?", ["red", "blue", "A. tricky", "green"]
    assert split_options(question_text(q, opts)) == (q, opts)
    assert split_options(q) == (q, [])
    assert split_options("Options:\nnot a list") == ("Options:\nnot a list", [])


def test_emit_then_import_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "vp"
    build_visualprobe(
        "synthetic", out, train=3, test=4, seed=3, workers=1, long_side=(512, 768), emit_mini_o3=True
    )
    ours = {it.id: it for it in read_items(out / "train.parquet") + read_items(out / "test.parquet")}
    for rel in (
        "VisualProbe_train/train.json",
        "VisualProbe_Easy/val.json",
        "VisualProbe_Medium/val.json",
        "VisualProbe_Hard/val.json",
    ):
        for rec in json.loads((out / rel).read_text()):
            it = ours[rec["doc_id"]]
            assert (
                rec["problem"].startswith(f"{IMAGE_PLACEHOLDER}\n")
                and rec["problem"].count(IMAGE_PLACEHOLDER) == 1
            )
            assert rec["problem"] == f"{IMAGE_PLACEHOLDER}\n{question_text(it.question, it.options)}"
            assert rec["solution"] == it.answer and (out / rec["images"][0]).is_file()
            expected = (
                "visual_probe_train"
                if rel.startswith("VisualProbe_train")
                else f"visual_probe_{it.difficulty}"
            )
            assert rec["data_source"] == expected
    back = tmp_path / "back"
    build_visualprobe("official", back, from_dir=out, workers=1)
    imported = read_items(back / "train.parquet") + read_items(back / "test.parquet")
    assert len(imported) == len(ours)
    for it in imported:
        orig = ours[it.id.split("-", 2)[2]]
        assert (it.question, it.options, it.answer) == (orig.question, orig.options, orig.answer)
        assert (back / it.image).read_bytes() == (out / orig.image).read_bytes()
        if orig.image.startswith("images/test/"):
            assert it.difficulty == orig.difficulty


def test_missing_and_escaping_images_are_skipped_and_listed(tmp_path: Path) -> None:
    root = released_layout(tmp_path / "release")
    rows = json.loads((root / "VisualProbe_train/train.json").read_text())
    rows[0]["images"] = ["VisualProbe_train/images/gone.jpg"]
    rows[1]["images"] = ["../outside.jpg"]
    (root / "VisualProbe_train/train.json").write_text(json.dumps(rows))
    _image(tmp_path / "outside.jpg")
    summary = build_visualprobe("official", tmp_path / "vp", from_dir=root, workers=1)
    details = {s.id: s.detail for s in summary.skipped}
    assert "image not found" in details["official-train-0"] and "escapes" in details["official-train-1"]
    assert {(s.reason, s.split) for s in summary.skipped} == {("bad image", "train")}
    assert summary.counts == {"train": 1, "test": 3}
    listed = [json.loads(line) for line in (tmp_path / "vp" / EXCLUDED_NAME).read_text().splitlines()]
    assert [s["id"] for s in listed] == ["official-train-0", "official-train-1"]
    manifest = json.loads((tmp_path / "vp" / "manifest.json").read_text())
    assert manifest["excluded"] == {"count": 2, "by_reason": {"bad image": 2}, "listed_in": EXCLUDED_NAME}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda rows: rows[0].update(data_source="vstar_bench"),
            "[0].data_source: 'vstar_bench' is not one of",
        ),
        (lambda rows: rows[1].pop("problem"), "[1].problem: missing"),
        (
            lambda rows: rows[2].update(images=["a.jpg", "b.jpg"]),
            "[2].images: expected a list with exactly one",
        ),
        (
            lambda rows: rows[0].update(solution=None),
            "[0].solution: expected str or int or float, got NoneType",
        ),
        (lambda rows: rows[2].update(doc_id=0), "doc_id '0' repeats"),
    ],
)
def test_malformed_released_file_names_file_and_field(tmp_path: Path, mutate: Any, message: str) -> None:
    root = released_layout(tmp_path / "release")
    path = root / "VisualProbe_train/train.json"
    rows = json.loads(path.read_text())
    mutate(rows)
    path.write_text(json.dumps(rows))
    with pytest.raises(BadInputError) as err:
        build_visualprobe("official", tmp_path / "vp", from_dir=root, workers=1)
    assert str(path) in str(err.value) and message in str(err.value)
    assert not (tmp_path / "vp").exists()


def test_no_released_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no released files found"):
        build_visualprobe("official", tmp_path / "vp", from_dir=tmp_path / "empty", workers=1)
