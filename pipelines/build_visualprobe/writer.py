"""The dataset dir: train.parquet, test.parquet, images/ (written by the source) and manifest.json (which counts
what was left out; excluded.jsonl lists it)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from minio3_data import __version__
from minio3_data.exclusions import exclusion_summary
from minio3_data.fsutil import atomic_write_text
from minio3_data.profiles import DEFAULT_PROFILE
from minio3_data.records import ProbeItem, write_items

from . import difficulty as rule
from .result import SPLITS, Built

MANIFEST_FORMAT = "minio3-visualprobe/1"


def counts(items: list[ProbeItem]) -> dict[str, Any]:
    """Totals and counts by difficulty, by kind, and by difficulty x kind."""
    by_both: dict[str, dict[str, int]] = {}
    for (d, k), n in sorted(Counter((it.difficulty, it.kind) for it in items).items()):
        by_both.setdefault(d, {})[k] = n
    return {
        "total": len(items),
        "by_difficulty": dict(sorted(Counter(it.difficulty for it in items).items())),
        "by_kind": dict(sorted(Counter(it.kind for it in items).items())),
        "by_difficulty_and_kind": by_both,
    }


def manifest(built: Built, source: str, emitted: list[str]) -> dict[str, Any]:
    """Everything needed to know what is in the dir and how it was made (no timestamps: reproducible)."""
    return {
        "format": MANIFEST_FORMAT,
        "minio3_version": __version__,
        "source": source,
        "params": built.params,
        "difficulty_rule": rule.RULE,
        # the profile whose first-view rule sizes targets for difficulty and refuses images it would drop
        "protocol": DEFAULT_PROFILE,
        "counts": {split: counts(built.splits.get(split, [])) for split in SPLITS},
        **built.notes,
        "excluded": exclusion_summary(built.skipped),
        "mini_o3_json": emitted,
    }


def write_dataset(root: Path, built: Built, source: str, emitted: list[str]) -> dict[str, Any]:
    """Write both splits and the manifest into `root` (the temp dir that becomes --out)."""
    for split in SPLITS:
        write_items(root / f"{split}.parquet", built.splits.get(split, []))
    data = manifest(built, source, emitted)
    atomic_write_text(root / "manifest.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return data
