"""The importers of the harder benchmarks (build-visualprobe --source o3bench | vtcbench) on small files the
test writes in each benchmark's public format (O3-Bench: test/metadata.jsonl beside images/, as its Hugging
Face dataset; VTC-Bench: data/VTC-Bench.tsv with relative image paths); a malformed file is one line."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from minio3_data.errors import BadInputError
from minio3_data.records import read_items
from pipelines.build_visualprobe import build_visualprobe

runner = CliRunner()


def image_file(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG" if path.suffix == ".png" else "JPEG")
    path.write_bytes(buf.getvalue())


def one_line_cli(args: list[str]) -> str:
    res = runner.invoke(app, ["build-visualprobe", *args])
    assert res.exit_code == 2, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    return res.output


# --- O3-Bench ---------------------------------------------------------------------------------------------


def o3bench_records() -> list[dict]:
    """A chart question (six options, the last "No right choice"), a map question whose answer needs two
    layouts (one reaching past the image's edge), and an open question without options."""
    layouts = {
        "1": {"layout_id": 1, "bbox": [10.5, 20.0, 200.0, 120.0], "type": "legend"},
        "2": {"layout_id": 2, "bbox": [300.0, 250.0, 380.0, 330.0], "type": "map"},
        "3": {"layout_id": 3, "bbox": [500.0, 400.0, 700.0, 520.0], "type": "map"},
    }
    return [
        {"file_name": "images/chart/1-3.png", "subset": "chart",
         "question": "When the Solvency Ratio first exceeded 5.00x, how did Total Assets change?",
         "options": "A. −$13,046\nB. −$14,895\nC. −$14,837\nD. −$15,019\nE. −$15,967\nF. No right choice",
         "answer": "D", "explanation": "Step 1. ...", "target_layouts": [], "layout_infos": {},
         "img_width": 640, "img_height": 480},
        {"file_name": "images/map/campus_a.jpg", "subset": "map",
         "question": "Starting from Lerner Hall, walk north; which street do you reach?",
         "options": "A. Broadway → 121st Street\nB. Broadway → 120th Street\nC. Amsterdam\nD. Riverside",
         "answer": "A", "explanation": "Step 1. Locate Lerner Hall [layout 1] ...", "target_layouts": [1, 3],
         "layout_infos": layouts, "img_width": 600, "img_height": 500},
        {"file_name": "images/map/campus_a.jpg", "subset": "map", "question": "How many gates are marked?",
         "answer": "4", "target_layouts": [2], "layout_infos": layouts, "img_width": 600, "img_height": 500},
    ]  # fmt: skip


def o3bench_layout(root: Path, records: list[dict] | None = None) -> tuple[Path, Path]:
    """data/O3-Bench/test as the Hugging Face dataset holds it: metadata.jsonl and images/<subset>/."""
    test = root / "O3-Bench" / "test"
    image_file(test / "images" / "chart" / "1-3.png", (640, 480), (10, 20, 30))
    image_file(test / "images" / "map" / "campus_a.jpg", (600, 500), (200, 180, 90))
    lines = [json.dumps(r, ensure_ascii=False) for r in (o3bench_records() if records is None else records)]
    (test / "metadata.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return test / "metadata.jsonl", test


def test_o3bench_imports_questions_options_and_subsets(tmp_path: Path) -> None:
    ann, images = o3bench_layout(tmp_path)
    summary = build_visualprobe("o3bench", tmp_path / "o3", annotations=ann, images=images, workers=1)
    assert summary.counts == {"train": 0, "test": 3} and summary.skipped == []
    items = {it.id: it for it in read_items(tmp_path / "o3" / "test.parquet")}
    assert list(items) == ["o3bench-0000", "o3bench-0001", "o3bench-0002"]  # the release's sample_index
    chart, route, gates = items.values()
    assert chart.options == ["−$13,046", "−$14,895", "−$14,837", "−$15,019", "−$15,967", "No right choice"]
    assert chart.answer == "D" and chart.target_bbox is None and (chart.width, chart.height) == (640, 480)
    assert route.options[0] == "Broadway → 121st Street" and route.answer == "A"
    assert route.target_bbox == [10.5, 20.0, 600.0, 500.0]  # layouts 1 and 3, the union clipped to the image
    assert gates.options == [] and gates.answer == "4" and gates.target_bbox == [300.0, 250.0, 380.0, 330.0]
    assert {it.kind for it in items.values()} == {"chart", "map"} and {it.source for it in items.values()} == {
        "o3bench"
    }
    assert route.image == gates.image and (tmp_path / "o3" / route.image).is_file()  # one image, stored once
    manifest = json.loads((tmp_path / "o3" / "manifest.json").read_text())
    assert manifest["counts"]["test"]["by_kind"] == {"chart": 1, "map": 2}


def test_o3bench_options_out_of_order_skip_the_item_and_say_why(tmp_path: Path) -> None:
    records = o3bench_records()
    records[1]["options"] = "A. Broadway\nC. Amsterdam"
    ann, images = o3bench_layout(tmp_path, records)
    summary = build_visualprobe("o3bench", tmp_path / "o3", annotations=ann, images=images, workers=1)
    assert summary.counts["test"] == 2
    (skipped,) = summary.skipped
    assert (skipped.id, skipped.reason) == ("o3bench-0001", "bad options")
    assert skipped.detail == f"{ann}: line 2.options[1] 'C. Amsterdam': expected 'B. <option>'"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: lines[:1] + ['{"file_name": "images/map/campus_a.jpg", "subset": '] + lines[1:],
         r"metadata.jsonl: line 2: not valid JSON \(Expecting value at column 52\)$"),
        (lambda lines: [json.dumps({k: v for k, v in json.loads(lines[0]).items() if k != "question"})],
         r"metadata.jsonl: line 1.question: missing$"),
        (lambda lines: [json.dumps([json.loads(line) for line in lines])],
         r"metadata.jsonl: line 1: expected one O3-Bench question object per line \(JSON Lines\), got list$"),
        (lambda lines: [lines[2].replace('"target_layouts": [2]', '"target_layouts": [7]')],
         r"metadata.jsonl: line 1.target_layouts: layout 7 is not in layout_infos"),
        (lambda lines: [lines[0].replace('"answer": "D"', '"answer": 4')],
         r"metadata.jsonl: line 1.answer: expected str, got int$"),
        (lambda lines: [], r"metadata.jsonl: no O3-Bench question in it \(empty\)"),
    ],
)  # fmt: skip
def test_o3bench_malformed_file_is_one_line_naming_the_line(tmp_path: Path, edit, message: str) -> None:
    ann, images = o3bench_layout(tmp_path)
    lines = ann.read_text(encoding="utf-8").splitlines()
    ann.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match=message):
        build_visualprobe("o3bench", tmp_path / "o3", annotations=ann, images=images, workers=1)


def test_o3bench_cli_errors_are_one_line(tmp_path: Path) -> None:
    ann, images = o3bench_layout(tmp_path)
    out = one_line_cli(["--source", "o3bench", "--annotations", str(ann), "--out", str(tmp_path / "o3")])
    assert "--source o3bench needs --images DIR" in out
    wrong = tmp_path / "MME-RealWorld.json"
    wrong.write_text(json.dumps([{"Question_id": 1}]))
    out = one_line_cli(["--source", "o3bench", "--annotations", str(wrong), "--images", str(images),
                        "--out", str(tmp_path / "o3")])  # fmt: skip
    assert "expected one O3-Bench question object per line (JSON Lines), got list" in out


# --- VTC-Bench --------------------------------------------------------------------------------------------


HEADER = ["index", "id", "category", "image", "question", "answer", "A", "B", "C", "D"]


def vtc_rows() -> list[list[str]]:
    """An open OCR row (no options, a non-ASCII answer), four-, three- and two-option rows, a question quoted
    the way the release's file quotes one, and a row whose image is missing."""
    return [
        ["1", "attention_focusing_1", "attention", "images/attention_focusing/attention_focusing_1.jpg",
         "Locate the mirrored shop sign. Answer what the Chinese characters are.", "光陽機車", "", "", "", ""],
        ["2", "attention_focusing_2", "attention", "images/attention_focusing/attention_focusing_2.jpg",
         "How many people in the picture are facing us?", "B", "6", "5", "3", "4"],
        ["124", "chart_35", "chart", "images/chart/chart_35.jpg",
         'Please calculate the maximum value of "differentiated" in the chart?', "C", "0.34", "0.38", "0.33", ""],
        ["300", "spatial_4", "spatial", "images/spatial/spatial_4.jpg", "Is the cup left of the plate?", "A",
         "yes", "no", "", ""],
        ["301", "spatial_5", "spatial", "images/spatial/spatial_5.jpg", "Which is nearer?", "B", "cup", "plate",
         "", ""],
    ]  # fmt: skip


def vtc_layout(root: Path, rows: list[list[str]] | None = None, header: list[str] = HEADER) -> tuple[Path, Path]:
    """The TSV (written with csv's default quoting, as the release's file is) and its images/ folder."""
    for rel in ("attention_focusing/attention_focusing_1.jpg", "attention_focusing/attention_focusing_2.jpg",
                "chart/chart_35.jpg", "spatial/spatial_4.jpg"):  # fmt: skip
        image_file(root / "images" / rel, (800, 600), (len(rel), 90, 40))
    tsv = root / "VTC-Bench.tsv"
    with tsv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter="\t")
        writer.writerow(header)
        writer.writerows(vtc_rows() if rows is None else rows)
    return tsv, root


def test_vtcbench_imports_open_and_multiple_choice_rows_by_category(tmp_path: Path) -> None:
    tsv, images = vtc_layout(tmp_path / "VTC-Bench")
    assert '"Please calculate the maximum value of ""differentiated"" in the chart?"' in tsv.read_text("utf-8")
    summary = build_visualprobe("vtcbench", tmp_path / "v", annotations=tsv, images=images, workers=1)
    assert summary.counts == {"train": 0, "test": 4}
    (missing,) = summary.skipped
    assert (missing.id, missing.reason) == ("vtcbench-spatial_5", "bad image") and "spatial_5.jpg" in missing.detail
    items = {it.id: it for it in read_items(tmp_path / "v" / "test.parquet")}
    ocr, people, chart, cup = (items[f"vtcbench-{i}"] for i in
                               ("attention_focusing_1", "attention_focusing_2", "chart_35", "spatial_4"))  # fmt: skip
    assert ocr.options == [] and ocr.answer == "光陽機車"
    assert people.options == ["6", "5", "3", "4"] and people.answer == "B"
    assert chart.options == ["0.34", "0.38", "0.33"] and chart.answer == "C"
    assert chart.question == 'Please calculate the maximum value of "differentiated" in the chart?'
    assert cup.options == ["yes", "no"] and (cup.width, cup.height) == (800, 600)
    assert {it.id: it.kind for it in items.values()} == {
        "vtcbench-attention_focusing_1": "attention", "vtcbench-attention_focusing_2": "attention",
        "vtcbench-chart_35": "chart", "vtcbench-spatial_4": "spatial",
    }  # fmt: skip
    assert {it.source for it in items.values()} == {"vtcbench"}
    manifest = json.loads((tmp_path / "v" / "manifest.json").read_text())
    assert manifest["counts"]["test"]["by_kind"] == {"attention": 2, "chart": 1, "spatial": 1}
    first = build_visualprobe("vtcbench", tmp_path / "v2", annotations=tsv, images=images, test=2, workers=1)
    assert first.counts["test"] == 2


def test_vtcbench_reads_the_tool_chain_file_too(tmp_path: Path) -> None:
    rows = [[*row, '["Crop", "Resize"]'] for row in vtc_rows()[:2]]
    tsv, images = vtc_layout(tmp_path / "VTC-Bench", rows, [*HEADER, "model_tools_gt"])
    summary = build_visualprobe("vtcbench", tmp_path / "v", annotations=tsv, images=images, workers=1)
    assert summary.counts["test"] == 2


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([*vtc_rows()[:2], vtc_rows()[1]], HEADER, r"VTC-Bench.tsv: id 'attention_focusing_2' repeats \(rows 2 and 3\)"),
        ([["9", " ", "ocr", "images/ocr/ocr_1.jpg", "Read it.", "x", "", "", "", ""]], HEADER,
         r"VTC-Bench.tsv: row 1: id is empty"),
        ([["0", "q", "A", "B", "C", "D", "single", "cycle_0", "aGVsbG8="]],
         ["index", "question", "answer", "A", "B", "C", "D", "category", "image"],
         r"VTC-Bench.tsv: not a VTC-Bench TSV \(no column id\); expected the tab-separated VTC-Bench.tsv"),
    ],
)  # fmt: skip
def test_vtcbench_malformed_file_is_one_line(tmp_path: Path, rows, header, message: str) -> None:
    tsv, images = vtc_layout(tmp_path / "VTC-Bench", rows, header)
    with pytest.raises(BadInputError, match=message):
        build_visualprobe("vtcbench", tmp_path / "v", annotations=tsv, images=images, workers=1)


def test_vtcbench_cli_errors_are_one_line(tmp_path: Path) -> None:
    tsv, images = vtc_layout(tmp_path / "VTC-Bench")
    out = one_line_cli(["--source", "vtcbench", "--images", str(images), "--out", str(tmp_path / "v")])
    assert "--source vtcbench needs --annotations VTC-Bench.tsv" in out
    json_file = tmp_path / "metadata.jsonl"
    json_file.write_text(json.dumps(o3bench_records()[0]) + "\n")
    out = one_line_cli(["--source", "vtcbench", "--annotations", str(json_file), "--images", str(images),
                        "--out", str(tmp_path / "v")])  # fmt: skip
    assert "not a VTC-Bench TSV (no column" in out
