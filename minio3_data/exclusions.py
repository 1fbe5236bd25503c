"""One way to drop a record (DESIGN invariant 7): every stage that leaves out an item, row, attempt or
damaged line records it as an `Exclusion`, written to `excluded.jsonl` in its output dir, and says so in one
console line. `reason` is short and categorical, so summaries and the viewer count by it; `detail` holds the
specifics.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fsutil import atomic_write_text

EXCLUDED_NAME = "excluded.jsonl"
OPTIONAL_FIELDS = ("split", "image")  # written only where a stage has them


@dataclass(frozen=True)
class Exclusion:
    """One record a stage left out, and why."""

    stage: str  # the command that left it out ("build-visualprobe", "export-llamafactory", ...)
    id: str  # what was left out: an item or row id, an image, "attempts.jsonl line 7"
    reason: str  # a short category to count by ("bad image", "bad target_bbox", "role order")
    detail: str = ""  # what exactly was wrong
    split: str = ""
    image: str = ""

    def to_dict(self) -> dict[str, str]:
        record = {"stage": self.stage, "id": self.id, "reason": self.reason, "detail": self.detail}
        return record | {name: getattr(self, name) for name in OPTIONAL_FIELDS if getattr(self, name)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Exclusion:
        """A record as written, or an older one: exports before this record had no `stage` and wrote the
        reason as `rule`."""
        known = {name: str(d[name]) for name in OPTIONAL_FIELDS if d.get(name)}
        reason = d.get("reason", d.get("rule"))
        return cls(str(d.get("stage", "")), str(d.get("id", "?")), str(reason or "?"), str(d.get("detail", "")),
                   **known)  # fmt: skip


def write_exclusions(out_dir: str | os.PathLike, records: Iterable[Exclusion]) -> Path:
    """Replace `out_dir`/excluded.jsonl with `records`, a JSON object a line (empty when none was dropped)."""
    path = Path(out_dir) / EXCLUDED_NAME
    atomic_write_text(path, "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records))
    return path


def by_reason(records: Iterable[Exclusion]) -> dict[str, int]:
    """How many records each reason left out, commonest first."""
    counts = Counter(r.reason for r in records)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def reasons_text(records: Iterable[Exclusion]) -> str:
    """The counts by reason as text: "bad image: 2, missing image: 1"."""
    return ", ".join(f"{reason}: {n}" for reason, n in by_reason(records).items())


def exclusion_summary(records: list[Exclusion]) -> dict[str, Any]:
    """What a stage's own summary file (manifest.json, stats.json, export.json) says about its exclusions."""
    return {"count": len(records), "by_reason": by_reason(records), "listed_in": EXCLUDED_NAME}


def exclusion_line(records: list[Exclusion], where: str | os.PathLike) -> str | None:
    """One console line when anything was left out: how many, by reason, the first one, and where all are."""
    if not records:
        return None
    first = records[0]
    detail = f": {first.detail}" if first.detail else ""
    return f"left out {len(records)} ({reasons_text(records)}), e.g. {first.id}{detail}; every one is in {where}"
