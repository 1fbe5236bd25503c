"""What a source hands to the writer: items per split, what was left out and why, and its parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from minio3_data.exclusions import Exclusion
from minio3_data.records import ProbeItem
from minio3_data.row_rules import row_problems, row_reason

SPLITS: tuple[str, ...] = ("train", "test")
STAGE = "build-visualprobe"


@dataclass
class Built:
    splits: dict[str, list[ProbeItem]]
    params: dict[str, Any]  # generator / selection parameters, written to manifest.json
    skipped: list[Exclusion] = field(default_factory=list)  # written to excluded.jsonl
    notes: dict[str, Any] = field(default_factory=dict)  # source-specific facts (quotas, shortfalls)


def skip(reason: str, detail: str, *, item: str = "", image: str = "", split: str = "") -> Exclusion:
    """What a source left out (an item, or a whole image when no item was made from it), and why."""
    return Exclusion(STAGE, item or image, reason, detail, split=split, image=image)


def drop_bad_rows(built: Built) -> None:
    """Move every item that breaks the row rules (the ones synthesis and export apply on read) from its
    split to the excluded ones, so a dataset dir never holds a row a reader would refuse."""
    for split, items in built.splits.items():
        keep = []
        for item in items:
            problems = row_problems(item)
            if problems:
                reason, why = row_reason(problems), "; ".join(problems)
                built.skipped.append(skip(reason, why, item=item.id, image=item.image, split=split))
            else:
                keep.append(item)
        built.splits[split] = keep
