"""Small, real inputs for the export tests: a dataset image, trajectories recorded through ZoomEnv, a run
dir, and the released Mini-o3-Coldstart parquet layout (rendered with render.to_released_row)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from minio3_data.images import OriginalCache
from minio3_data.protocol import Answer, Zoom, render_turn
from minio3_data.records import Trajectory, Turn, Verdict, write_trajectories
from minio3_data.render import conversation, to_released_row
from minio3_data.zoom import Observation, ZoomEnv

RELEASED_ROW_GROUP = 100
# The released parquet was pushed with `datasets`, so its schema carries the HF features (images: Image).
RELEASED_SCHEMA = datasets.Features(
    {
        "conversations": datasets.Value("string"),
        "images": datasets.List(datasets.Image()),
        "image_names": datasets.List(datasets.Value("string")),
        "data_source": datasets.Value("string"),
        "sample_index": datasets.Value("int64"),
        "rollout_index": datasets.Value("int64"),
    }
).arrow_schema


def write_image(path: Path, size: tuple[int, int], seed: int = 0) -> Path:
    """A noisy JPEG (noise so that crops differ and JPEG sizes are realistic)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=85)
    return path


def make_dataset(root: Path, sizes: tuple[tuple[int, int], ...] = ((900, 600), (640, 480))) -> Path:
    for i, size in enumerate(sizes):
        write_image(root / "images" / f"scene{i}.jpg", size, seed=i)
    return root


def record(
    dataset: Path,
    image: str,
    zooms: list[tuple[tuple[float, float, float, float], str]],
    *,
    tid: str = "item0#0",
    answer: str = "B",
    verdict: str = "correct",
    status: str = "answered",
    question: str = "What colour is the small sign?",
    options: tuple[str, ...] = ("red", "blue"),
) -> Trajectory:
    """A trajectory whose zooms were really executed by ZoomEnv (so box_px and observation are true)."""
    env = ZoomEnv(dataset / image, cache=OriginalCache())
    turns: list[Turn] = []
    for k, (bbox, source) in enumerate(zooms):
        zoom = Zoom(bbox, source)
        result = env.step(zoom)
        turn = Turn(render_turn(f"Look closer, step {k}.", zoom), "zoom", bbox=list(bbox), source=source)
        if isinstance(result, Observation):
            turn.box_px, turn.observation = list(result.box), result.index
        else:
            turn.error = result.message
        turns.append(turn)
    turns.append(Turn(render_turn("Now it is clear.", Answer(answer)), "answer", answer=answer))
    item_id, sample = tid.split("#")
    return Trajectory(
        id=tid, item_id=item_id, sample_index=int(sample), teacher="scripted:test", exemplar_ids=["e1"],
        question=question, options=list(options), ground_truth=answer, image=image, width=env.width,
        height=env.height, difficulty="easy", turns=turns, final_answer=answer,
        verdict=Verdict(verdict, "rule"), status=status, num_turns=len(turns),
    )  # fmt: skip


def standard_trajectories(dataset: Path) -> list[Trajectory]:
    """Four kept trajectories: a direct answer, a crop, a crop of a crop, and a duplicate of the crop
    (same original, same box: its images must be stored once)."""
    return [
        record(dataset, "images/scene0.jpg", [], tid="item0#0"),
        record(dataset, "images/scene0.jpg", [((0.1, 0.2, 0.5, 0.6), "original_image")], tid="item0#1"),
        record(
            dataset,
            "images/scene1.jpg",
            [((0.5, 0.5, 0.9, 0.9), "original_image"), ((0.0, 0.0, 0.5, 0.5), "observation_1")],
            tid="item1#0",
        ),
        record(dataset, "images/scene0.jpg", [((0.1, 0.2, 0.5, 0.6), "original_image")], tid="item0#2"),
    ]


def make_run(tmp: Path, trajectories: list[Trajectory] | None = None) -> Path:
    dataset = make_dataset(tmp / "dataset")
    run = tmp / "run"
    run.mkdir(parents=True, exist_ok=True)
    trajs = standard_trajectories(dataset) if trajectories is None else trajectories
    write_trajectories(run / "trajectories.parquet", trajs)
    (run / "run.json").write_text(json.dumps({"dataset": str(dataset.resolve()), "identity": {"protocol": "released"}}))
    return run


def released_row(dataset: Path, traj: Trajectory, rollout: int = 0) -> dict[str, Any]:
    """The released cold-start row for a trajectory, rendered with its real observations."""
    env = ZoomEnv(dataset / traj.image, cache=OriginalCache())
    observations = env.replay(traj.turns)
    row = to_released_row(
        traj, conversation(traj.question, traj.options, traj.turns), [o.jpeg() for o in observations]
    )
    row["sample_index"], row["rollout_index"] = int(traj.item_id.removeprefix("item")), rollout
    return row


def python_literal_row(row: dict[str, Any]) -> dict[str, Any]:
    """The same row with `conversations` stored as a Python literal (single quotes), as `eval` would read."""
    return {**row, "conversations": repr(json.loads(row["conversations"]))}


def write_released(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows in 100-row groups, as `datasets` writes image datasets (a reader holds one group at a time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(path, RELEASED_SCHEMA) as writer:
        for start in range(0, len(rows), RELEASED_ROW_GROUP):
            writer.write_table(
                pa.Table.from_pylist(rows[start : start + RELEASED_ROW_GROUP], schema=RELEASED_SCHEMA)
            )
    return path


def error_turn_trajectory(dataset: Path) -> Trajectory:
    """A kept trajectory with an invalid zoom (zero-width box) and its error turn before the answer."""
    traj = record(dataset, "images/scene1.jpg", [((0.5, 0.5, 0.5, 0.9), "original_image")], tid="item1#1")
    assert traj.turns[0].error
    return traj
