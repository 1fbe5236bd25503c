"""JSON Lines annotation files (one record a line, as Hugging Face imagefolder's metadata.jsonl), read with
one-line errors that name the file and the line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError

from .fields import _lone_surrogate


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")  # a BOM some editors write is not JSON
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such annotation file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"{path}: cannot read ({e.__class__.__name__})") from None


def _record(path: Path, n: int, line: str, what: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise BadInputError(f"{path}: line {n}: not valid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise BadInputError(f"{path}: line {n}: JSON nested too deeply to be a record") from None
    if not isinstance(record, dict):
        raise BadInputError(
            f"{path}: line {n}: expected one {what} object per line (JSON Lines), got {type(record).__name__}"
        )
    where = _lone_surrogate(record)
    if where:
        raise BadInputError(
            f"{path}: line {n}: {where}: holds a lone surrogate escape (\\ud800-\\udfff without its pair), "
            "which is not text; fix the string"
        )
    return record


def jsonl_records(path: Path, what: str = "record") -> list[tuple[str, dict[str, Any]]]:
    """Each non-blank line's object, paired with "line N" for the one-line errors that name a field."""
    path = Path(path)
    records = [
        (f"line {n}", _record(path, n, line, what))
        for n, line in enumerate(_text(path).splitlines(), start=1)
        if line.strip()
    ]
    if not records:
        raise BadInputError(f"{path}: no {what} in it (empty); expected one JSON object per line")
    return records
