"""Benchmark importers (build-visualprobe --source vstar | hrbench | mmerw) on small files written in each
benchmark's own format; a file of another format is one line."""

from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from minio3_data.errors import BadInputError
from minio3_data.exclusions import EXCLUDED_NAME, Exclusion
from minio3_data.protocol import OPTION_LETTERS
from minio3_data.records import read_items
from pipelines.build_visualprobe import build_visualprobe

runner = CliRunner()


def jpeg(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "JPEG")
    return buf.getvalue()


# --- V* ---------------------------------------------------------------------------------------------------


def vstar_layout(root: Path) -> Path:
    """Two categories, three annotated images (one a two-object question), one annotation without its image."""
    annotations = {
        ("direct_attributes", "sa_1"): {"target_object": ["cup"], "bbox": [[100, 80, 40, 30]],
                                        "question": "What is the colour of the cup?",
                                        "options": ["red", "blue", "green", "white"]},
        ("direct_attributes", "sa_2"): {"target_object": ["hat"], "bbox": [[10, 10, 20, 20]],
                                        "question": "What is the colour of the hat?",
                                        "options": ["black", "yellow", "pink", "grey"]},
        ("relative_position", "sa_3"): {"target_object": ["dog", "car"], "bbox": [[50, 60, 20, 10], [500, 400, 200, 300]],
                                        "question": "Is the dog on the left or right of the car?",
                                        "options": ["left", "right"]},
        ("relative_position", "sa_4"): {"question": "Where is the bag?", "options": ["up", "down"]},
    }  # fmt: skip
    for (category, stem), ann in annotations.items():
        (root / category).mkdir(parents=True, exist_ok=True)
        (root / category / f"{stem}.json").write_text(json.dumps(ann))
        if stem != "sa_4":
            (root / category / f"{stem}.jpg").write_bytes(
                jpeg((640, 480), (len(stem) * 9, 90, 30 * int(stem[-1])))
            )
    return root


def test_vstar_options_are_shuffled_with_a_seed_and_the_order_recorded(tmp_path: Path) -> None:
    src = vstar_layout(tmp_path / "vstar_bench")
    summary = build_visualprobe("vstar", tmp_path / "v", from_dir=src, seed=3, workers=1)
    assert summary.counts == {"train": 0, "test": 3}
    assert summary.skipped == [
        Exclusion(
            "build-visualprobe", "vstar-relative_position-sa_4", "missing image",
            f"{src / 'relative_position' / 'sa_4.json'}: no image beside it",
        )
    ]
    items = {it.id: it for it in read_items(tmp_path / "v" / "test.parquet")}
    manifest = json.loads((tmp_path / "v" / "manifest.json").read_text())
    orders = manifest["option_order"]
    truth = {
        "vstar-direct_attributes-sa_1": "red",
        "vstar-direct_attributes-sa_2": "black",
        "vstar-relative_position-sa_3": "left",
    }  # options[0] of each annotation
    for iid, it in items.items():
        assert it.options[OPTION_LETTERS.index(it.answer)] == truth[iid]  # the answer letter names options[0]
        assert sorted(orders[iid]) == list(range(len(it.options))) and orders[iid].index(
            0
        ) == OPTION_LETTERS.index(it.answer)
        assert it.source == "vstar" and it.kind == iid.split("-")[1] and (tmp_path / "v" / it.image).is_file()
    assert {it.answer for it in items.values()} != {"A"}  # not every answer is the first option any more
    assert items["vstar-direct_attributes-sa_1"].target_bbox == [100.0, 80.0, 140.0, 110.0]  # xywh -> xyxy
    assert items["vstar-relative_position-sa_3"].target_bbox == [50.0, 60.0, 640.0, 480.0]  # union, clipped
    again = build_visualprobe("vstar", tmp_path / "v2", from_dir=src, seed=3, workers=1)
    assert again.counts == summary.counts
    assert json.loads((tmp_path / "v2" / "manifest.json").read_text())["option_order"] == orders
    other = build_visualprobe("vstar", tmp_path / "v3", from_dir=src, seed=4, workers=1)
    assert other.counts == summary.counts


def test_vstar_wrong_format_is_one_line(tmp_path: Path) -> None:
    src = vstar_layout(tmp_path / "vstar_bench")
    (src / "direct_attributes" / "sa_1.json").write_text(json.dumps({"question": "q", "options": "red"}))
    with pytest.raises(BadInputError, match=r"sa_1.json: options: expected list, got str$"):
        build_visualprobe("vstar", tmp_path / "v", from_dir=src, workers=1)
    (tmp_path / "empty" / "x").mkdir(parents=True)
    with pytest.raises(BadInputError, match=r"no V\* annotations found"):
        build_visualprobe("vstar", tmp_path / "v", from_dir=tmp_path / "empty", workers=1)


def test_a_vstar_box_outside_its_image_is_reported_not_dropped_silently(tmp_path: Path) -> None:
    """A box with no area in the 640x480 image leaves the union (it would stretch the target over the image)
    and is listed like a skipped item; the item is kept with the boxes that are inside."""
    src = vstar_layout(tmp_path / "vstar_bench")
    sa_3 = src / "relative_position" / "sa_3.json"
    sa_3.write_text(json.dumps(json.loads(sa_3.read_text()) | {"bbox": [[50, 60, 20, 10], [700, 500, 30, 30]]}))
    sa_1 = src / "direct_attributes" / "sa_1.json"
    sa_1.write_text(json.dumps(json.loads(sa_1.read_text()) | {"bbox": [[-90, 10, 40, 30]]}))
    res = runner.invoke(app, ["build-visualprobe", "--source", "vstar", "--from", str(src), "--out",
                              str(tmp_path / "v"), "--workers", "1"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "test: 3 items" in res.output
    assert "left out 3 (box outside image: 2, missing image: 1)" in res.output
    assert f"every one is in {tmp_path / 'v' / EXCLUDED_NAME}" in res.output
    items = {it.id: it for it in read_items(tmp_path / "v" / "test.parquet")}
    assert items["vstar-relative_position-sa_3"].target_bbox == [50.0, 60.0, 70.0, 70.0]
    assert items["vstar-direct_attributes-sa_1"].target_bbox is None
    listed = [json.loads(line) for line in (tmp_path / "v" / EXCLUDED_NAME).read_text().splitlines()]
    assert [s["id"] for s in listed] == [
        "vstar-relative_position-sa_4", "vstar-direct_attributes-sa_1", "vstar-relative_position-sa_3"
    ]
    assert listed[2]["detail"] == (f"{sa_3}: bbox[1] [700.0, 500.0, 30.0, 30.0] has no area inside the 640x480 "
                                   "image; the item is kept without that box")  # fmt: skip
    assert json.loads((tmp_path / "v" / "manifest.json").read_text())["excluded"]["count"] == 3


def test_a_lone_surrogate_in_vstar_json_is_one_line(tmp_path: Path) -> None:
    """JSON can spell half a UTF-16 pair (\\ud800), which no UTF-8 file can hold: writing it crashed."""
    src = vstar_layout(tmp_path / "vstar_bench")
    ann = src / "direct_attributes" / "sa_2.json"
    ann.write_text(ann.read_text().replace("the hat", "the \\ud800hat"))
    res = runner.invoke(app, ["build-visualprobe", "--source", "vstar", "--from", str(src), "--out",
                              str(tmp_path / "v"), "--workers", "1"])  # fmt: skip
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"error: {ann}: question: holds a lone surrogate escape" in res.output
    assert not (tmp_path / "v").exists()
    ann.write_text(ann.read_text().replace("\\ud800", "\\ud83d\\ude00"))  # a whole pair is a character
    assert build_visualprobe("vstar", tmp_path / "v", from_dir=src, workers=1).counts["test"] == 3


# --- HR-Bench ---------------------------------------------------------------------------------------------


HEADER = ["index", "question", "answer", "A", "B", "C", "D", "category", "cycle_category", "image"]


def hrbench_tsv(path: Path) -> Path:
    """Two questions in four option cycles each; a cycle's image is the first row's index, as VLMEvalKit
    writes repeated images; one more row whose image is not base64."""
    images = {
        0: base64.b64encode(jpeg((900, 600), (1, 2, 3))).decode(),
        4: base64.b64encode(jpeg((900, 600), (9, 8, 7))).decode(),
    }
    rows = []
    for first, (question, options, right, category) in enumerate(
        [
            ("What is written on the sign?", ["OPEN", "SHUT", "EXIT", "STOP"], "EXIT", "single"),
            ("Are the two cars the same colour?", ["yes", "no", "one is red", "cannot tell"], "no", "cross"),
        ]
    ):
        base = first * 4
        for c in range(4):
            rot = options[c:] + options[:c]
            image = images[base] if c == 0 else str(base)
            rows.append([base + c, question, "ABCD"[rot.index(right)], *rot, category, f"cycle_{c}", image])
    rows.append([8, "Broken row?", "A", "x", "y", "", "", "single", "cycle_0", "!!not base64 at all " * 5])
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def test_hrbench_keeps_option_cycles_as_one_question(tmp_path: Path) -> None:
    tsv = hrbench_tsv(tmp_path / "hr_bench_8k.tsv")
    summary = build_visualprobe("hrbench", tmp_path / "hr", annotations=tsv, workers=1)
    assert summary.counts["test"] == 8 and [(s.id, s.reason) for s in summary.skipped] == [("hrbench-8k-8", "bad image")]
    assert "not base64" in summary.skipped[0].detail or "not an image" in summary.skipped[0].detail
    items = read_items(tmp_path / "hr" / "test.parquet")
    groups = {}
    for it in items:
        groups.setdefault(it.question_group, []).append(it)
        assert it.source == "hrbench-8k" and it.width == 900 and it.height == 600
        assert it.options[OPTION_LETTERS.index(it.answer)] in ("EXIT", "no")
    assert sorted(len(g) for g in groups.values()) == [4, 4] and "" not in groups
    assert {len({it.image for it in g}) for g in groups.values()} == {1}  # each image stored once
    assert len(list((tmp_path / "hr" / "images").iterdir())) == 2
    manifest = json.loads((tmp_path / "hr" / "manifest.json").read_text())
    assert manifest["questions"] == 2 and manifest["cycles_per_question"] == {"4": 2}


def test_hrbench_first_n_rows_and_wrong_format(tmp_path: Path) -> None:
    tsv = hrbench_tsv(tmp_path / "hr_bench_4k.tsv")
    assert (
        build_visualprobe("hrbench", tmp_path / "hr", annotations=tsv, test=3, workers=1).counts["test"] == 3
    )
    wrong = tmp_path / "MME-RealWorld.json"
    wrong.write_text(json.dumps([{"Question_id": 1}]))
    res = runner.invoke(app, ["build-visualprobe", "--source", "hrbench", "--annotations", str(wrong),
                              "--out", str(tmp_path / "bad")])  # fmt: skip
    assert res.exit_code == 2 and "not an HR-Bench TSV (no column" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_hrbench_repeated_index_is_one_line(tmp_path: Path) -> None:
    """Two rows with one index would be two items with one id, a dataset eval refuses to read."""
    tsv = hrbench_tsv(tmp_path / "hr_bench_4k.tsv")
    lines = tsv.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[3] = "1" + lines[3][lines[3].index("\t"):]  # the third row (index 2) now says 1
    tsv.write_text("".join(lines), encoding="utf-8")
    res = runner.invoke(app, ["build-visualprobe", "--source", "hrbench", "--annotations", str(tsv),
                              "--out", str(tmp_path / "hr")])  # fmt: skip
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1, res.output
    assert f"error: {tsv}: index '1' repeats (rows 2 and 3)" in res.output
    assert not (tmp_path / "hr").exists()


def test_hrbench_with_a_utf8_bom_imports(tmp_path: Path) -> None:
    tsv = hrbench_tsv(tmp_path / "hr_bench_8k.tsv")
    tsv.write_bytes(b"\xef\xbb\xbf" + tsv.read_bytes())
    summary = build_visualprobe("hrbench", tmp_path / "hr", annotations=tsv, workers=1)
    assert summary.counts["test"] == 8
    assert {it.id for it in read_items(tmp_path / "hr" / "test.parquet")} == {f"hrbench-8k-{i}" for i in range(8)}


# --- MME-RealWorld ----------------------------------------------------------------------------------------


def mmerw_files(root: Path) -> tuple[Path, Path]:
    (root / "imgs" / "monitoring").mkdir(parents=True)
    (root / "imgs" / "monitoring" / "a.jpg").write_bytes(jpeg((1200, 900), (5, 6, 7)))
    records = [
        {"Question_id": "perception/monitoring/counting/0310", "Image": "monitoring/a.jpg",
         "Text": "What is the number of buses in the image?", "Question Type": "Multiple Choice",
         "Answer choices": ["(A) 13", "(B) 90", "(C) 77", "(D) 6", "(E) The image does not feature the buses"],
         "Ground truth": "E", "Category": "Vehicle/counting", "Subtask": "Monitoring", "Task": "Perception"},
        {"Question_id": "perception/monitoring/counting/0311", "Image": "monitoring/a.jpg", "Text": "How many?",
         "Answer choices": ["A) 1", "(B) 2"], "Ground truth": "A", "Task": "Perception"},
    ]  # fmt: skip
    ann = root / "MME-RealWorld.json"
    ann.write_text(json.dumps(records))
    return ann, root / "imgs"


def test_mmerw_strips_option_letters(tmp_path: Path) -> None:
    ann, imgs = mmerw_files(tmp_path / "mme")
    summary = build_visualprobe("mmerw", tmp_path / "m", annotations=ann, images=imgs, workers=1)
    assert summary.counts["test"] == 1
    assert (summary.skipped[0].id, summary.skipped[0].reason) == ("mmerw-perception-monitoring-counting-0311", "bad options")
    assert "Answer choices[0] 'A) 1': expected '(A) <option>'" in summary.skipped[0].detail
    (it,) = read_items(tmp_path / "m" / "test.parquet")
    assert it.options == ["13", "90", "77", "6", "The image does not feature the buses"] and it.answer == "E"
    assert it.kind == "Perception/Monitoring/Vehicle/counting" and it.source == "mmerw"
    assert it.id == "mmerw-perception-monitoring-counting-0310" and (it.width, it.height) == (1200, 900)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"questions": []}, "top level must be a JSON list of MME-RealWorld questions"),
        ([{"Question_id": "x", "Image": "a.jpg", "Text": "q"}], r"\[0\]\.Answer choices: missing"),
        ("index\tquestion\n", "not valid JSON"),
    ],
)
def test_mmerw_wrong_format_is_one_line(tmp_path: Path, content: object, message: str) -> None:
    ann, imgs = mmerw_files(tmp_path / "mme")
    ann.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(BadInputError, match=message):
        build_visualprobe("mmerw", tmp_path / "m", annotations=ann, images=imgs, workers=1)


def test_a_lone_surrogate_in_mmerw_json_names_the_record(tmp_path: Path) -> None:
    ann, imgs = mmerw_files(tmp_path / "mme")
    ann.write_text(ann.read_text().replace("number of buses", "number of \\udc80buses"))
    with pytest.raises(BadInputError, match=r"MME-RealWorld.json: \[0\]\.Text: holds a lone surrogate escape"):
        build_visualprobe("mmerw", tmp_path / "m", annotations=ann, images=imgs, workers=1)


def test_benchmark_sources_name_what_they_need(tmp_path: Path) -> None:
    for source, needs in (
        ("vstar", "--from DIR"),
        ("hrbench", "--annotations FILE.tsv"),
        ("mmerw", "--annotations"),
    ):
        with pytest.raises(BadInputError, match=f"--source {source} needs {needs}"):
            build_visualprobe(source, tmp_path / source, workers=1)


def test_an_imported_benchmark_evaluates_offline(tmp_path: Path) -> None:
    """V* keeps its target boxes, so the scripted teacher evaluates it without a model."""
    src = vstar_layout(tmp_path / "vstar_bench")
    build_visualprobe("vstar", tmp_path / "v", from_dir=src, workers=1)
    res = runner.invoke(app, ["eval", "--dataset", str(tmp_path / "v"), "--out", str(tmp_path / "e"), "--k", "2",
                              "--max-turns", "2,6"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "all (3 questions) Avg@2" in res.output
