"""Exporting a synth-coldstart run dir: re-derived crops, content-addressed images, exclusions, formats."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from export_fixtures import error_turn_trajectory, make_dataset, make_run, record, standard_trajectories
from PIL import Image

from minio3_data.errors import BadInputError
from minio3_data.exclusions import EXCLUDED_NAME, by_reason
from minio3_data.images import OriginalCache
from minio3_data.records import write_trajectories
from minio3_data.zoom import ZoomEnv
from pipelines.export_llamafactory import export_run
from pipelines.export_llamafactory.writers import JSON_NAME, PARQUET_NAME


def rows(out: Path) -> list[dict]:
    return json.loads((out / JSON_NAME).read_text())


def excluded(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / EXCLUDED_NAME).read_text().splitlines()]


def test_rows_hold_every_turn_and_their_images_in_placeholder_order(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    summary = export_run(run, tmp_path / "out", workers=1, progress=False)
    assert (summary.rows_read, summary.rows_written, summary.excluded) == (4, 4, [])
    out = rows(tmp_path / "out")
    assert [r["id"] for r in out] == ["item0#0", "item0#1", "item1#0", "item0#2"]
    nested = out[2]
    roles = [m["from"] for m in nested["conversations"]]
    assert roles == ["system", "human", "gpt", "human", "gpt", "human", "gpt"]
    assert nested["conversations"][1]["value"].startswith("<image>\nWhat colour is the small sign?")
    assert "Observation 2" in nested["conversations"][5]["value"]
    assert len(nested["images"]) == 3 == sum(m["value"].count("<image>") for m in nested["conversations"])
    assert nested["images"][0].startswith("images/orig/") and nested["images"][2].startswith("images/crops/")


def test_crops_are_the_pixels_zoomenv_derives_and_stored_once(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    out = tmp_path / "out"
    summary = export_run(run, out, workers=1, progress=False)
    files = sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*.jpg"))
    referenced = sorted({p for r in rows(out) for p in r["images"]})
    assert files == referenced  # no orphans, nothing missing
    assert summary.images == len(files) == 5  # 2 originals, 3 distinct crops (item0#1 and item0#2 share one)
    crop_of_crop = rows(out)[2]
    env = ZoomEnv(tmp_path / "dataset/images/scene1.jpg", cache=OriginalCache())  # what synthesis saw
    expected = env.replay(standard_trajectories(tmp_path / "dataset")[2].turns)
    original = tmp_path / "dataset/images/scene1.jpg"
    assert (out / crop_of_crop["images"][0]).read_bytes() == original.read_bytes()  # stored as is, not re-encoded
    for rel, obs in zip(crop_of_crop["images"][1:], expected[1:]):
        assert (out / rel).read_bytes() == obs.jpeg()
    x0, y0, x1, y1 = expected[2].box
    assert crop_of_crop["images"][2].endswith(f"_{x0}_{y0}_{x1}_{y1}.jpg")


def test_an_exif_rotated_original_is_stored_as_its_first_view(tmp_path: Path) -> None:
    """LLaMA-Factory does not apply EXIF orientation; our crops do: store the pixels we saw instead."""
    dataset = make_dataset(tmp_path / "dataset")
    rotated = dataset / "images/rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(dataset / "images/scene0.jpg").save(rotated, exif=exif, quality=90)
    run = make_run(tmp_path, [record(dataset, "images/rotated.jpg", [], tid="r#0")])
    export_run(run, tmp_path / "out", workers=1, progress=False)
    (row,) = rows(tmp_path / "out")
    stored = Image.open(tmp_path / "out" / row["images"][0])
    assert stored.size == ZoomEnv(rotated, cache=OriginalCache()).first_view().size
    assert stored.getexif().get(0x0112, 1) == 1


def test_identical_originals_under_two_names_are_stored_once(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "dataset")
    (dataset / "images/copy.jpg").write_bytes((dataset / "images/scene0.jpg").read_bytes())
    trajs = [
        record(dataset, "images/scene0.jpg", [], tid="a#0"),
        record(dataset, "images/copy.jpg", [], tid="b#0"),
    ]
    run = make_run(tmp_path, trajs)
    export_run(run, tmp_path / "out", workers=1, progress=False)
    a, b = rows(tmp_path / "out")
    assert a["images"] == b["images"]
    assert len(list((tmp_path / "out/images/orig").iterdir())) == 1


def test_error_turns_are_kept_as_human_turns_without_images(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "dataset")
    run = make_run(tmp_path, [error_turn_trajectory(dataset)])
    export_run(run, tmp_path / "out", workers=1, progress=False)
    (row,) = rows(tmp_path / "out")
    assert row["conversations"][3]["from"] == "human" and "ERROR" in row["conversations"][3]["value"]
    assert len(row["images"]) == 1


def test_bad_trajectories_are_excluded_and_listed_never_silently(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "dataset")
    good = record(dataset, "images/scene0.jpg", [((0.1, 0.1, 0.6, 0.6), "original_image")], tid="ok#0")
    wrong = dataclasses.replace(
        record(dataset, "images/scene0.jpg", [], tid="wrong#0"),
        verdict=good.verdict.__class__("wrong", "rule"),
    )
    moved = record(dataset, "images/scene0.jpg", [((0.1, 0.1, 0.6, 0.6), "original_image")], tid="moved#0")
    moved.turns[0].box_px = [0, 0, 5, 5]  # the recorded box no longer matches what replay derives
    missing = dataclasses.replace(
        record(dataset, "images/scene1.jpg", [], tid="missing#0"), image="images/gone.jpg"
    )
    escaping = dataclasses.replace(
        record(dataset, "images/scene1.jpg", [], tid="escape#0"), image="../outside.jpg"
    )
    prose = record(dataset, "images/scene1.jpg", [], tid="prose#0")
    prose.turns[-1].text = "<think>the <image> is clear</think>\n<answer>B</answer>"
    run = make_run(tmp_path, [good, wrong, moved, missing, escaping, prose])
    summary = export_run(run, tmp_path / "out", workers=1, progress=False)
    assert summary.rows_written == 1 and [r["id"] for r in rows(tmp_path / "out")] == ["ok#0"]
    assert by_reason(summary.excluded) == {"not correct": 1, "replay mismatch": 1, "bad image": 2, "image count": 1}
    listed = {e["id"]: e for e in excluded(tmp_path / "out")}
    assert set(listed) == {"wrong#0", "moved#0", "missing#0", "escape#0", "prose#0"}
    assert "[0, 0, 5, 5]" in listed["moved#0"]["detail"]
    assert "not found" in listed["missing#0"]["detail"] and "escapes" in listed["escape#0"]["detail"]
    assert "placeholder" in listed["prose#0"]["detail"]
    assert "left out 5 (bad image: 2, " in summary.text()
    assert f"every one is in {(tmp_path / 'out' / EXCLUDED_NAME).resolve()}" in summary.text()


def test_over_long_rows_are_excluded_with_their_estimate(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    longest = export_run(run, tmp_path / "all", workers=1, progress=False).max_tokens
    summary = export_run(run, tmp_path / "out", cutoff_len=longest - 1, workers=1, progress=False)
    listed = excluded(tmp_path / "out")
    assert by_reason(summary.excluded) == {"too long": len(listed)} and 0 < len(listed) < 4
    assert all(f"about {longest} tokens > cutoff_len {longest - 1}" in e["detail"] for e in listed)
    assert summary.max_tokens < longest
    kept = {p for r in rows(tmp_path / "out") for p in r["images"]}
    on_disk = {p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out/images").rglob("*.jpg")}
    assert on_disk == kept  # an excluded row leaves no image behind


def test_workers_give_the_same_export_as_one_process(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    export_run(run, tmp_path / "one", workers=1, progress=False)
    export_run(run, tmp_path / "two", workers=2, progress=False)
    assert (tmp_path / "one" / JSON_NAME).read_bytes() == (tmp_path / "two" / JSON_NAME).read_bytes()
    for p in (tmp_path / "one/images").rglob("*.jpg"):
        assert (tmp_path / "two" / p.relative_to(tmp_path / "one")).read_bytes() == p.read_bytes()


def test_parquet_rows_embed_the_same_images_and_load_with_datasets(tmp_path: Path) -> None:
    import datasets
    run = make_run(tmp_path)
    export_run(run, tmp_path / "json", workers=1, progress=False)
    summary = export_run(run, tmp_path / "pq", fmt="parquet", workers=1, progress=False)
    assert summary.images == 1 + 2 + 3 + 2
    assert not (tmp_path / "pq/images").exists()
    info = json.loads((tmp_path / "pq/dataset_info.json").read_text())
    assert info["minio3_coldstart"]["file_name"] == PARQUET_NAME
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "pq" / PARQUET_NAME), split="train")
    assert isinstance(ds.features["images"].feature, datasets.Image)
    as_json = rows(tmp_path / "json")
    for row, ref in zip(ds, as_json):
        assert row["conversations"] == ref["conversations"]
        assert [im.size for im in row["images"]] == [
            Image.open(tmp_path / "json" / p).size for p in ref["images"]
        ]
    raw = ds.cast_column("images", datasets.Sequence(datasets.Image(decode=False)))[2]["images"]
    assert [im["bytes"] for im in raw] == [(tmp_path / "json" / p).read_bytes() for p in as_json[2]["images"]]


def test_output_is_atomic_and_refuses_to_clobber(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(BadInputError, match="--overwrite"):
        export_run(run, out, workers=1, progress=False)
    assert (out / "keep.txt").exists()
    (run / "trajectories.parquet").write_bytes(b"not parquet")
    with pytest.raises(BadInputError, match="not a readable parquet"):
        export_run(run, out, workers=1, progress=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "out", "run"]  # no temp dir left


def test_a_run_with_nothing_to_export_is_an_error_not_an_empty_dataset(tmp_path: Path) -> None:
    dataset = make_dataset(tmp_path / "dataset")
    wrong = record(dataset, "images/scene0.jpg", [], tid="w#0", verdict="wrong")
    run = make_run(tmp_path, [wrong])
    with pytest.raises(BadInputError, match=r"no row to export \(not correct: 1\)"):
        export_run(run, tmp_path / "out", workers=1, progress=False)
    assert not (tmp_path / "out").exists()


def test_run_dir_problems_are_one_line_errors(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    (run / "run.json").write_text(json.dumps({"dataset": str(tmp_path / "nowhere")}))
    with pytest.raises(BadInputError, match="does not exist"):
        export_run(run, tmp_path / "out", progress=False)
    (run / "run.json").unlink()
    with pytest.raises(BadInputError, match="run.json: missing"):
        export_run(run, tmp_path / "out", progress=False)
    write_trajectories(run / "trajectories.parquet", [])
    with pytest.raises(BadInputError, match="run.json"):
        export_run(run, tmp_path / "out", progress=False)


def test_cli_exports_a_run_and_refuses_ambiguous_sources(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    run = make_run(tmp_path)
    runner = CliRunner()
    ok = runner.invoke(
        app, ["export-llamafactory", "--run", str(run), "--out", str(tmp_path / "out"), "--workers", "1"]
    )
    assert ok.exit_code == 0, ok.output
    assert "exported 4 of 4 rows" in ok.output and (tmp_path / "out" / JSON_NAME).is_file()
    for extra in ([], ["--run", str(run), "--official", str(run)]):
        bad = runner.invoke(app, ["export-llamafactory", "--out", str(tmp_path / "x"), *extra])
        assert bad.exit_code == 2 and "exactly one of --run" in bad.output
    wrong = runner.invoke(
        app, ["export-llamafactory", "--run", str(run), "--out", str(tmp_path / "y"), "--format", "csv"]
    )
    assert wrong.exit_code == 2 and "--format 'csv'" in wrong.output and not (tmp_path / "y").exists()
