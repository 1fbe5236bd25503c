"""Exporting the released Mini-o3-Coldstart parquet: safe parsing, original bytes kept, dedup, exclusions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_fixtures import (
    make_dataset,
    python_literal_row,
    released_row,
    standard_trajectories,
    write_image,
    write_released,
)

from minio3_data.errors import BadInputError
from minio3_data.exclusions import EXCLUDED_NAME, by_reason
from pipelines.export_llamafactory import export_official
from pipelines.export_llamafactory.source_official import parse_conversations
from pipelines.export_llamafactory.writers import JSON_NAME


@pytest.fixture()
def released(tmp_path: Path) -> list[dict]:
    dataset = make_dataset(tmp_path / "dataset")
    return [released_row(dataset, t, rollout=k) for k, t in enumerate(standard_trajectories(dataset))]


def rows(out: Path) -> list[dict]:
    return json.loads((out / JSON_NAME).read_text())


def test_released_rows_become_sharegpt_with_their_original_image_bytes(
    tmp_path: Path, released: list[dict]
) -> None:
    src = write_released(tmp_path / "released.parquet", released)
    summary = export_official(src, tmp_path / "out", workers=1, progress=False)
    assert (summary.rows_read, summary.rows_written) == (4, 4)
    out = rows(tmp_path / "out")
    assert [r["id"] for r in out] == ["minio3/0/0", "minio3/0/1", "minio3/1/2", "minio3/0/3"]
    for row, ref in zip(out, released):
        assert row["conversations"] == json.loads(ref["conversations"])
        stored = [(tmp_path / "out" / p).read_bytes() for p in row["images"]]
        assert stored == [im["bytes"] for im in ref["images"]]  # no decode / re-encode
    assert summary.images == 5  # the shared original and the shared crop are stored once


def test_python_literal_strings_are_read_without_eval(tmp_path: Path, released: list[dict]) -> None:
    src = write_released(tmp_path / "released.parquet", [python_literal_row(r) for r in released])
    export_official(src, tmp_path / "out", workers=1, progress=False)
    assert [r["conversations"] for r in rows(tmp_path / "out")] == [
        json.loads(r["conversations"]) for r in released
    ]


def test_code_in_the_conversations_string_is_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ValueError):
        parse_conversations(f"__import__('pathlib').Path({str(marker)!r}).touch()")
    assert not marker.exists()
    assert parse_conversations('[{"from": "human", "value": "x"}]') == [{"from": "human", "value": "x"}]
    assert parse_conversations("[{'from': 'gpt', 'value': 'y'}]") == [{"from": "gpt", "value": "y"}]


def test_broken_released_rows_are_excluded_and_listed(tmp_path: Path, released: list[dict]) -> None:
    good = released[1]
    unreadable = {**good, "conversations": "[{'from': 'human', 'value': "}
    swapped_roles = {**good, "conversations": json.dumps(list(reversed(json.loads(good["conversations"]))))}
    truncated = {
        **good,
        "images": [{"bytes": good["images"][0]["bytes"][:-300], "path": "o.jpg"}, good["images"][1]],
    }
    not_an_image = {**good, "images": [{"bytes": b"hello", "path": "o.jpg"}, good["images"][1]]}
    path_only = {**good, "images": [{"bytes": None, "path": "/abs/o.jpg"}, good["images"][1]]}
    one_image_short = {**good, "images": good["images"][:1]}
    src = write_released(
        tmp_path / "r.parquet",
        [good, unreadable, swapped_roles, truncated, not_an_image, path_only, one_image_short],
    )
    summary = export_official(src, tmp_path / "out", workers=1, progress=False)
    assert summary.rows_written == 1
    assert by_reason(summary.excluded) == {"bad conversations": 1, "role order": 1, "bad image": 3, "image count": 1}
    details = [
        json.loads(line)["detail"] for line in (tmp_path / "out" / EXCLUDED_NAME).read_text().splitlines()
    ]
    assert any("truncated JPEG" in d for d in details) and any("no embedded bytes" in d for d in details)
    assert any("not a readable image" in d for d in details)


def test_a_folder_of_shards_is_read_in_order(tmp_path: Path, released: list[dict]) -> None:
    write_released(tmp_path / "data/train-00000-of-00002.parquet", released[:3])
    write_released(tmp_path / "data/train-00001-of-00002.parquet", released[3:])
    summary = export_official(tmp_path / "data", tmp_path / "out", workers=2, progress=False)
    assert summary.rows_written == 4
    assert [r["conversations"] for r in rows(tmp_path / "out")] == [
        json.loads(r["conversations"]) for r in released
    ]


def test_rows_without_provenance_are_numbered_across_row_groups(tmp_path: Path, released: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    bare = [{"conversations": r["conversations"], "images": r["images"]} for r in released]
    pq.write_table(pa.Table.from_pylist(bare), tmp_path / "bare.parquet", row_group_size=3)
    export_official(tmp_path / "bare.parquet", tmp_path / "out", workers=2, progress=False)
    assert [r["id"] for r in rows(tmp_path / "out")] == ["row 0", "row 1", "row 2", "row 3"]


def test_png_images_keep_their_format(tmp_path: Path, released: list[dict]) -> None:
    png = write_image(tmp_path / "x.png", (300, 200))
    row = {**released[0], "images": [{"bytes": png.read_bytes(), "path": "original_image.png"}]}
    export_official(
        write_released(tmp_path / "r.parquet", [row]), tmp_path / "out", workers=1, progress=False
    )
    (out,) = rows(tmp_path / "out")
    assert (
        out["images"][0].endswith(".png")
        and (tmp_path / "out" / out["images"][0]).read_bytes() == png.read_bytes()
    )


def test_wrong_inputs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no parquet file"):
        export_official(tmp_path, tmp_path / "out", progress=False)
    bad = tmp_path / "bad.parquet"
    bad.write_text("nope")
    with pytest.raises(BadInputError, match="not a readable parquet"):
        export_official(bad, tmp_path / "out", progress=False)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["x"]}), tmp_path / "other.parquet")
    with pytest.raises(BadInputError, match=r"missing column\(s\) \['conversations', 'images'\]"):
        export_official(tmp_path / "other.parquet", tmp_path / "out", progress=False)
