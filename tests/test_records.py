"""The Arrow schemas come from the record dataclasses: every field is a column of the right type, in field
order, and a record survives a parquet round trip unchanged."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pytest

from minio3_data.arrow_schema import arrow_schema, arrow_type
from minio3_data.records import (
    PROBE_SCHEMA,
    TRAJECTORY_SCHEMA,
    ProbeItem,
    Trajectory,
    Turn,
    Usage,
    Verdict,
    read_items,
    read_trajectories,
    write_items,
    write_trajectories,
)


def _names(t: pa.StructType | pa.Schema) -> list[str]:
    return [t.field(i).name for i in range(t.num_fields)]


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def test_every_field_is_a_column_in_field_order() -> None:
    assert PROBE_SCHEMA.names == _fields(ProbeItem)
    assert TRAJECTORY_SCHEMA.names == _fields(Trajectory)
    assert _names(TRAJECTORY_SCHEMA.field("turns").type.value_type) == _fields(Turn)
    assert _names(TRAJECTORY_SCHEMA.field("verdict").type) == _fields(Verdict)
    assert _names(TRAJECTORY_SCHEMA.field("usage").type) == _fields(Usage)


def test_columns_have_the_types_existing_parquet_files_use() -> None:
    probe = {f.name: f.type for f in PROBE_SCHEMA}
    assert probe["id"] == pa.string() and probe["width"] == pa.int64()
    assert probe["options"] == pa.list_(pa.string()) and probe["target_bbox"] == pa.list_(pa.float64())
    turn = TRAJECTORY_SCHEMA.field("turns").type.value_type
    assert turn.field("action").type == pa.string()  # a Literal
    assert turn.field("bbox").type == pa.list_(pa.float64())
    assert turn.field("box_px").type == pa.list_(pa.int64())
    assert turn.field("observation").type == pa.int64()  # int | None
    usage = TRAJECTORY_SCHEMA.field("usage").type
    assert usage.field("requests").type == pa.int64() and usage.field("cost_usd").type == pa.float64()
    assert all(f.nullable for f in TRAJECTORY_SCHEMA)


@dataclass
class _Inner:
    flag: bool


@dataclass
class _Record:
    name: str
    inner: _Inner | None
    scores: list[list[float]] = field(default_factory=list)


def test_a_new_field_becomes_a_column_and_an_unknown_type_is_refused() -> None:
    assert arrow_schema(_Record) == pa.schema(
        [
            ("name", pa.string()),
            ("inner", pa.struct([("flag", pa.bool_())])),
            ("scores", pa.list_(pa.list_(pa.float64()))),
        ]
    )
    with pytest.raises(TypeError, match="no Arrow type"):
        arrow_type(dict[str, int])
    with pytest.raises(TypeError, match="no Arrow type"):
        arrow_type(int | str)


def test_records_round_trip_through_parquet(tmp_path: Path) -> None:
    item = ProbeItem(
        id="a", image="images/a.jpg", question="What color?", answer="B", options=["red", "blue"],
        difficulty="hard", target_bbox=[1.5, 2.0, 30.25, 40.0], width=4000, height=3000, source="coco",
        kind="attribute",
    )  # fmt: skip
    bare = ProbeItem(id="b", image="images/b.jpg", question="How many?", answer="3")
    write_items(tmp_path / "items.parquet", [item, bare])
    assert read_items(tmp_path / "items.parquet") == [item, bare]

    turns = [
        Turn("<think>zoom</think>", "zoom", bbox=[0.1, 0.2, 0.3, 0.4], source="original_image",
             box_px=[400, 600, 1200, 1200], observation=1),
        Turn("oops", "malformed", error="no action"),
        Turn("<answer>B</answer>", "answer", answer="B"),
    ]  # fmt: skip
    traj = Trajectory(
        id="a#0", item_id="a", sample_index=0, teacher="scripted:dfs", exemplar_ids=["e1", "e2"],
        question="What color?", options=["red", "blue"], ground_truth="B", image="images/a.jpg", width=4000,
        height=3000, difficulty="hard", turns=turns, final_answer="B", verdict=Verdict("correct", "rule"),
        status="answered", num_turns=3, usage=Usage(10, 20, 5, 3, 0.25), patterns=["depth_first"], seed=7,
    )  # fmt: skip
    failed = dataclasses.replace(traj, id="a#1", turns=[], final_answer=None, status="failed", error="quota")
    write_trajectories(tmp_path / "trajs.parquet", [traj, failed])
    assert read_trajectories(tmp_path / "trajs.parquet") == [traj, failed]
