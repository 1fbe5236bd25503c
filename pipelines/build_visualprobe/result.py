"""What a source hands to the writer: items per split, what was skipped and why, and its parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from minio3_data.records import ProbeItem
from minio3_data.row_rules import row_problems

SPLITS: tuple[str, ...] = ("train", "test")


@dataclass
class Built:
    splits: dict[str, list[ProbeItem]]
    params: dict[str, Any]  # generator / selection parameters, written to manifest.json
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"image" or "item": ..., "reason": ...}
    notes: dict[str, Any] = field(default_factory=dict)  # source-specific facts (quotas, shortfalls)


def skip(reason: str, *, image: str = "", item: str = "") -> dict[str, str]:
    """One manifest entry for something left out, naming it and saying why."""
    entry = {"image": image} if image else {}
    if item:
        entry["item"] = item
    entry["reason"] = reason
    return entry


def drop_bad_rows(built: Built) -> None:
    """Move every item that breaks the row rules (the ones synthesis and export apply on read) from its
    split to the skipped list, so a dataset dir never holds a row a reader would refuse."""
    for split, items in built.splits.items():
        keep = []
        for item in items:
            problems = row_problems(item)
            if problems:
                built.skipped.append(skip("; ".join(problems), image=item.image, item=item.id))
            else:
                keep.append(item)
        built.splits[split] = keep
