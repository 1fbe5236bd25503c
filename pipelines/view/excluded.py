"""The header row that counts, by reason, what the stage that made a dir left out (its excluded.jsonl).

Every stage lists what it dropped in one shape (minio3_data.exclusions); exports made before that shape
wrote the reason as `rule`, which is read too. A line that is not a record is counted, not hidden.
"""

from __future__ import annotations

import json
from pathlib import Path

from minio3_data.exclusions import EXCLUDED_NAME, Exclusion, reasons_text

from .markup import esc

UNREADABLE = Exclusion("", "?", "(unreadable line)")


def _record(line: str) -> Exclusion:
    try:
        return Exclusion.from_dict(json.loads(line))
    except (ValueError, AttributeError):  # not JSON, or JSON that is not an object
        return UNREADABLE


def excluded_fact(out_dir: Path) -> tuple[str, str] | None:
    """("excluded", the count by reason and where the list is), or None when nothing was left out."""
    path = out_dir / EXCLUDED_NAME
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    records = [_record(line) for line in lines if line.strip()]
    if not records:
        return None
    return "excluded", esc(f"{len(records)} ({reasons_text(records)}); see {path}")
