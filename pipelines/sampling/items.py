"""The items a sampling run plays: a dataset split's usable rows, this shard's share, up to --limit."""

from __future__ import annotations

from pathlib import Path

from minio3_data.exclusions import Exclusion
from minio3_data.records import ProbeItem, read_items
from minio3_data.row_rules import usable_items

from .config import SynthConfig


def dataset_items(dataset: Path, split: str, stage: str) -> tuple[list[ProbeItem], list[Exclusion]]:
    """A split's usable rows, and an exclusion of `stage` for each row skipped because it breaks the row rules.

    A bad row is skipped and reported (console and excluded.jsonl), not a reason to refuse the dataset: one
    broken row of thousands in a dataset made elsewhere should not stop a paid run, and which rows are
    skipped depends only on the dataset and minio3's version, both in the run's identity, so a resume or
    a shard skips the same ones. A repeated id or a column of the wrong type still refuses the file."""
    return usable_items(read_items(Path(dataset) / f"{split}.parquet"), stage)


def run_items(cfg: SynthConfig, stage: str) -> tuple[list[ProbeItem], list[Exclusion]]:
    """The items of `cfg`'s shard, the first --limit of them, and the rows skipped."""
    items, skipped = dataset_items(cfg.dataset, cfg.split, stage)
    i, n = cfg.shard
    items = [it for k, it in enumerate(items) if k % n == i]
    return (items[: cfg.limit] if cfg.limit is not None else items), skipped
