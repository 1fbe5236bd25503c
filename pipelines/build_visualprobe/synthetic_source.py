"""--source synthetic: many `make_sample` calls in parallel, written as JPEGs with stable names.

Every item's seed, aimed kind and (for test) required difficulty come from (seed, split, index), so
the rows and image bytes are the same for any number of workers.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

from minio3_data.images import encode_jpeg
from minio3_data.records import ProbeItem

from ..parallel import ordered_map
from . import difficulty as rule
from .questions import KINDS
from .result import Built
from .synthetic import check_args, make_sample

JPEG_QUALITY = 90


def task_seed(seed: int, split: str, index: int) -> int:
    """A 63-bit seed for one item, derived from (run seed, split, index) and nothing else."""
    digest = hashlib.sha256(f"{seed}:{split}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class _Task:
    root: str
    split: str
    index: int
    seed: int
    kind: str
    difficulty: str | None  # required class (test quotas); None lets the rule decide (train)
    long_side: tuple[int, int]

    @property
    def item_id(self) -> str:
        return f"synthetic-{self.split}-{self.index:06d}"


def _make_item(task: _Task) -> tuple[ProbeItem, int]:
    """Generate, encode and write one item (runs in a worker process); also returns its attempts."""
    sample = make_sample(task.seed, difficulty=task.difficulty, kind=task.kind, long_side=task.long_side)
    rel = f"images/{task.split}/{task.item_id}.jpg"
    path = Path(task.root) / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_jpeg(sample.image, quality=JPEG_QUALITY))  # inside the temp dataset dir
    item = ProbeItem(
        id=task.item_id,
        image=rel,
        question=sample.question,
        answer=sample.answer,
        options=sample.options,
        difficulty=sample.difficulty,
        target_bbox=sample.target_bbox,
        target_boxes=sample.target_boxes,
        width=sample.width,
        height=sample.height,
        source="synthetic",
        kind=sample.kind,
    )
    return item, sample.attempts


def _tasks(root: Path, split: str, n: int, seed: int, long_side: tuple[int, int]) -> list[_Task]:
    rng = random.Random(f"schedule:{seed}:{split}")
    kinds = [KINDS[i % len(KINDS)] for i in range(n)]
    rng.shuffle(kinds)
    aims: list[str | None] = list(rule.schedule(n, rng)) if split == "test" else [None] * n
    return [
        _Task(str(root), split, i, task_seed(seed, split, i), kinds[i], aims[i], long_side) for i in range(n)
    ]


def build_synthetic(
    root: Path, *, train: int, test: int, seed: int, workers: int, long_side: tuple[int, int]
) -> Built:
    """Write train/test images under root/images and return their rows."""
    check_args(None, None, long_side)
    tasks = _tasks(root, "train", train, seed, long_side) + _tasks(root, "test", test, seed, long_side)
    splits: dict[str, list[ProbeItem]] = {"train": [], "test": []}
    attempts = 0
    made = ordered_map(_make_item, tasks, workers, "synthetic items", name=lambda t: t.item_id)
    for task, (item, tries) in zip(tasks, made):
        splits[task.split].append(item)
        attempts += tries
    params = {
        "seed": seed,
        "train": train,
        "test": test,
        "long_side": list(long_side),
        "kinds": list(KINDS),
        "jpeg_quality": JPEG_QUALITY,
        "test_quotas": rule.quotas(test),
    }
    # layouts the checker rejected, or whose class missed a test slot, and were drawn again
    notes = {"regenerated": attempts - len(tasks)}
    return Built(splits=splits, params=params, notes=notes)
