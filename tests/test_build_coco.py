"""--source coco: template questions proven by the boxes, image-wise splits, and every bad input."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from cli import app
from minio3_data.errors import BadInputError
from minio3_data.exclusions import EXCLUDED_NAME, by_reason
from minio3_data.fsutil import file_hash
from minio3_data.protocol import OPTION_LETTERS
from minio3_data.records import read_items
from pipelines.build_visualprobe import build_visualprobe, coco
from pipelines.build_visualprobe.coco import GRID_CELLS, candidates, load_coco, plural

W, H = 2400, 1800  # 4.3 MP: the first view shrinks it by about 0.68
CATEGORIES = [
    {"id": 1, "name": "car", "supercategory": "vehicle"},
    {"id": 2, "name": "truck", "supercategory": "vehicle"},
    {"id": 3, "name": "dog", "supercategory": "animal"},
    {"id": 4, "name": "person", "supercategory": "person"},
    {"id": 5, "name": "bench", "supercategory": "outdoor"},
    {"id": 6, "name": "kite", "supercategory": "sports"},
]
# (category, x, y, w, h): five small cars along the bottom, two trucks middle-right, one dog left of one
# person in the top-left cell, a large bench in the center, three kites top-right.
SCENE = (
    [(1, 60 + 150 * i, 1650, 30, 20) for i in range(5)]
    + [(2, 1700, 800, 40, 30), (2, 1900, 900, 40, 30)]
    + [(3, 300, 300, 40, 30), (4, 700, 305, 30, 40)]
    + [(5, 1000, 700, 400, 300)]
    + [(6, 1700 + 120 * i, 200, 25, 25) for i in range(3)]
)


def _draw(path: Path, size: tuple[int, int], boxes: list[tuple[int, int, int, int, int]]) -> None:
    im = Image.new("RGB", size, (90, 110, 60 + zlib.crc32(path.name.encode()) % 64))  # one picture, one content
    draw = ImageDraw.Draw(im)
    for cat, x, y, w, h in boxes:
        draw.rectangle([x, y, x + w, y + h], fill=(40 * cat % 255, 200, 255 - 30 * cat))
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=85)


def make_coco(root: Path, pictures: list[dict[str, Any]], extra_anns: list[dict[str, Any]] = ()) -> Path:
    """Write images (unless `draw` is False) and a COCO-format annotation file; returns its path."""
    images, anns = [], []
    for pid, pic in enumerate(pictures, start=1):
        images.append(
            {"id": pid, "file_name": pic["file_name"], "width": W, "height": H, **pic.get("meta", {})}
        )
        for cat, x, y, w, h in pic.get("boxes", SCENE):
            anns.append(
                {"id": len(anns) + 1, "image_id": pid, "category_id": cat, "bbox": [x, y, w, h], "iscrowd": 0}
            )
        if pic.get("draw", True):
            _draw(root / "images" / pic["file_name"], pic.get("size", (W, H)), list(pic.get("boxes", SCENE)))
    anns += list(extra_anns)
    path = root / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": CATEGORIES}))
    return path


def _by_kind(path: Path) -> dict[str, Any]:
    pictures, cats, _ = load_coco(path)
    return {c.kind: c for c in candidates(pictures[0], cats, seed=0)}


def test_questions_are_proven_by_the_boxes(tmp_path: Path) -> None:
    path = make_coco(tmp_path, [{"file_name": "a.jpg"}])
    found = _by_kind(path)
    assert set(found) == {"count", "category", "position"}
    count = found["count"]
    named = "car" if "cars" in count.question else "truck"
    assert count.value == str(sum(1 for c, *_ in SCENE if CATEGORIES[c - 1]["name"] == named))
    assert len(count.boxes) == int(count.value)
    position = found["position"]
    assert (
        position.question.startswith("Where is the dog relative to the person") and position.value == "left"
    )
    assert ("left, right, above or below" in position.question) != bool(position.options)
    category = found["category"]
    cell = next(name for row in GRID_CELLS for name in row if f"the {name} cell" in category.question)
    r, c = next((i, row.index(cell)) for i, row in enumerate(GRID_CELLS) if cell in row)
    x0, y0, x1, y1 = c * W / 3, r * H / 3, (c + 1) * W / 3, (r + 1) * H / 3
    present = {
        CATEGORIES[cat - 1]["name"]
        for cat, x, y, w, h in SCENE
        if x < x1 and x0 < x + w and y < y1 and y0 < y + h
    }
    assert [opt for opt in category.options if opt in present] == [
        category.value
    ]  # exactly one option is there
    assert len(category.options) == 4 and category.value == "car"  # the category with most look-alikes
    # a 30x20 car is 13.6 px tall in the first view (1 point); 4 other cars + 2 trucks look alike (1 point)
    assert category.lookalikes == 6 and coco._difficulty(load_coco(path)[0][0], category) == "medium"


def test_crowd_and_not_exhaustive_categories_are_never_counted(tmp_path: Path) -> None:
    crowd = {"id": 999, "image_id": 1, "category_id": 1, "bbox": [5, 5, 300, 200], "iscrowd": 1}
    found = _by_kind(make_coco(tmp_path, [{"file_name": "a.jpg"}], [crowd]))
    assert (found["count"].question, found["count"].value) in {
        ("How many trucks are there in the image?", "2"),
        ("How many kites are there in the image?", "3"),
    }
    lvis = make_coco(tmp_path, [{"file_name": "a.jpg", "meta": {"not_exhaustive_category_ids": [1, 2, 6]}}])
    assert "count" not in _by_kind(lvis)


def test_boxes_reaching_outside_the_image_are_clipped_or_never_used(tmp_path: Path) -> None:
    """A kite overshooting the edge by rounding is clipped; a "car" at x=5100 of a 2400 px image is a broken
    annotation, so cars are never counted (or used otherwise) in that image."""
    boxes = [*SCENE, (6, 2390.0, 200, 10.5, 25), (1, 5100, 1650, 30, 20)]
    path = make_coco(tmp_path, [{"file_name": "a.jpg", "boxes": boxes}])
    pictures, _, unreliable = load_coco(path)
    assert unreliable == {"degenerate": 0, "outside_image": 1} and pictures[0].unreliable == {1}
    assert pictures[0].instances[-2].box == [2390.0, 200.0, 2400.0, 225.0]
    found = _by_kind(path)
    assert "cars" not in found["count"].question and "car" not in found["category"].options
    assert all(0 <= b[0] and b[2] <= W and b[3] <= H for c in found.values() for b in c.boxes)


def test_plural_names() -> None:
    assert [plural(n) for n in ("person", "bus", "traffic light", "strawberry", "toy", "knife", "kite")] == [
        "people",
        "buses",
        "traffic lights",
        "strawberries",
        "toys",
        "knives",
        "kites",
    ]


def test_build_copies_images_and_keeps_images_whole_per_split(tmp_path: Path) -> None:
    ann = make_coco(tmp_path, [{"file_name": f"sub/p{i}.jpg"} for i in range(4)])
    out = tmp_path / "vp"
    summary = build_visualprobe(
        "coco", out, images=tmp_path / "images", annotations=ann, train=6, test=2, seed=1, workers=1
    )
    train, test = read_items(out / "train.parquet"), read_items(out / "test.parquet")
    assert summary.counts == {"train": len(train), "test": len(test)} and len(test) == 2 and len(train) == 6
    assert not {it.image for it in train} & {it.image for it in test}
    for it in train + test:
        assert re.fullmatch(r"images/[0-9a-f]{32}\.jpg", it.image) and (out / it.image).is_file()
        assert it.source == "coco" and it.target_bbox is not None and (it.width, it.height) == (W, H)
        if it.options:
            assert it.answer in OPTION_LETTERS[:4]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["source"] == "coco" and manifest["pictures"] == {"total": 4, "with_questions": 4}


def test_bad_images_are_skipped_and_listed(tmp_path: Path) -> None:
    pictures = [
        {"file_name": "good.jpg"},
        {"file_name": "missing.jpg", "draw": False},
        {"file_name": "corrupt.jpg", "draw": False},
        {"file_name": "truncated.jpg"},
        {"file_name": "../escape.jpg", "draw": False},
        {"file_name": "/abs/elsewhere.jpg", "draw": False},
        {"file_name": "resized.jpg", "size": (W // 2, H // 2)},
    ]
    ann = make_coco(tmp_path, pictures)
    (tmp_path / "images" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    whole = (tmp_path / "images" / "truncated.jpg").read_bytes()
    (tmp_path / "images" / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "escape.jpg").write_bytes((tmp_path / "images" / "good.jpg").read_bytes())
    out = tmp_path / "vp"
    summary = build_visualprobe(
        "coco", out, images=tmp_path / "images", annotations=ann, train=50, test=0, workers=1
    )
    reasons = {s.image: s.detail for s in summary.skipped}
    assert set(reasons) == {
        "missing.jpg",
        "corrupt.jpg",
        "truncated.jpg",
        "../escape.jpg",
        "/abs/elsewhere.jpg",
        "resized.jpg",
    }
    assert (
        "image not found" in reasons["missing.jpg"] and "cannot read image header" in reasons["corrupt.jpg"]
    )
    assert "cannot decode image" in reasons["truncated.jpg"]
    assert (
        "escapes" in reasons["../escape.jpg"]
        and "absolute paths are refused" in reasons["/abs/elsewhere.jpg"]
    )
    assert "annotations say 2400x1800 but the image is 1200x900" in reasons["resized.jpg"]
    assert by_reason(summary.skipped) == {"bad image": 5, "image size mismatch": 1}
    good = f"images/{file_hash(tmp_path / 'images' / 'good.jpg')}.jpg"
    assert {it.image for it in read_items(out / "train.parquet")} == {good}
    listed = [json.loads(line) for line in (out / EXCLUDED_NAME).read_text().splitlines()]
    assert listed == [s.to_dict() for s in summary.skipped]
    assert json.loads((out / "manifest.json").read_text())["excluded"]["count"] == 6


def test_decompression_bomb_is_refused_naming_the_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = make_coco(tmp_path, [{"file_name": "a.jpg"}, {"file_name": "b.jpg"}])
    monkeypatch.setenv("MINIO3_MAX_IMAGE_PIXELS", "1000000")
    with pytest.raises(BadInputError, match="no usable items") as err:
        build_visualprobe("coco", tmp_path / "vp", images=tmp_path / "images", annotations=ann, workers=1)
    assert "1,000,000" in str(err.value) and "MINIO3_MAX_IMAGE_PIXELS" in str(err.value)
    assert not (tmp_path / "vp").exists()


def test_dataset_images_have_their_own_lower_pixel_cap(tmp_path: Path) -> None:
    """A 240 MP PNG of a few KB passes the 250 MP bomb guard but costs 1.5 GB per worker to decode."""
    ann = make_coco(tmp_path, [{"file_name": "a.jpg"}, {"file_name": "b.jpg"}])
    args = ["build-visualprobe", "--source", "coco", "--images", str(tmp_path / "images"), "--annotations", str(ann),
            "--workers", "1", "--train", "5", "--test", "0"]
    runner = CliRunner()
    small = runner.invoke(app, [*args, "--out", str(tmp_path / "vp"), "--max-pixels", "4000000"])
    assert small.exit_code == 2 and "4,000,000" in small.output and "--max-pixels N" in small.output
    assert runner.invoke(app, [*args, "--out", str(tmp_path / "vp"), "--max-pixels", "5000000"]).exit_code == 0
    manifest = json.loads((tmp_path / "vp" / "manifest.json").read_text())
    assert manifest["params"]["max_pixels"] == 5_000_000
    assert "--max-pixels" in runner.invoke(app, ["build-visualprobe", "--help"]).output


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda d: d["annotations"][0].update(bbox=[1, 2, 3]),
            "annotations[0].bbox: expected a list of 4 finite numbers",
        ),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, "x", 4]), "annotations[0].bbox"),
        (lambda d: d["images"][0].pop("width"), "images[0].width: missing"),
        (lambda d: d["annotations"][0].update(image_id=77), "annotations[0].image_id: 77 is not in images"),
        (
            lambda d: d["annotations"][0].update(category_id=42),
            "annotations[0].category_id: 42 is not in categories",
        ),
        (lambda d: d.pop("categories"), "categories: missing"),
        (lambda d: d["categories"][0].update(name=5), "categories[0].name: expected str, got int"),
    ],
)
def test_malformed_annotations_name_the_file_and_field(tmp_path: Path, mutate: Any, message: str) -> None:
    ann = make_coco(tmp_path, [{"file_name": "a.jpg"}])
    data = json.loads(ann.read_text())
    mutate(data)
    ann.write_text(json.dumps(data))
    with pytest.raises(BadInputError) as err:
        build_visualprobe("coco", tmp_path / "vp", images=tmp_path / "images", annotations=ann, workers=1)
    assert str(ann) in str(err.value) and message in str(err.value) and "\n" not in str(err.value)


def test_invalid_json_is_one_line(tmp_path: Path) -> None:
    ann = tmp_path / "broken.json"
    ann.write_text('{"images": [')
    (tmp_path / "images").mkdir()
    with pytest.raises(BadInputError, match=r"broken.json: not valid JSON .* line 1"):
        build_visualprobe("coco", tmp_path / "vp", images=tmp_path / "images", annotations=ann, workers=1)


def test_a_lone_surrogate_is_one_line_naming_the_field(tmp_path: Path) -> None:
    ann = make_coco(tmp_path, [{"file_name": "a.jpg"}])
    ann.write_text(ann.read_text().replace('"name": "truck"', '"name": "tr\\udfffuck"'))
    res = CliRunner().invoke(app, ["build-visualprobe", "--source", "coco", "--images", str(tmp_path / "images"),
                                   "--annotations", str(ann), "--out", str(tmp_path / "vp")])  # fmt: skip
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"error: {ann}: categories[1].name: holds a lone surrogate escape" in res.output
