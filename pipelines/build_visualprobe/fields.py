"""Field access for annotation files that fails with one line naming the file and the field."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError

_MISSING = object()
_SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89a-fA-F]")  # \ud800-\udfff: half of a UTF-16 pair
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def load_json(path: Path) -> Any:
    """Parse a JSON file; unreadable or invalid JSON, or a string UTF-8 cannot hold, is a one-line error naming
    it and the string."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such annotation file") from None
    except json.JSONDecodeError as e:
        raise BadInputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise BadInputError(f"{path}: JSON nested too deeply to be annotations") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"{path}: cannot read ({e.__class__.__name__})") from None
    where = _SURROGATE_ESCAPE_RE.search(text) and _lone_surrogate(data)  # a cheap look first: files are large
    if where:
        raise BadInputError(
            f"{path}: {where}: holds a lone surrogate escape (\\ud800-\\udfff without its pair), which is not "
            "text and cannot be written; fix the string"
        )
    return data


def _lone_surrogate(data: Any) -> str | None:
    """Where the first string (or key) holding a lone UTF-16 surrogate is, e.g. "[3].Text"; None if none does.
    JSON's escapes can spell one (a pair is decoded into its character); UTF-8 cannot encode it."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str) and _SURROGATE_RE.search(value):
            return where or "top level"
        if isinstance(value, dict):
            if any(_SURROGATE_RE.search(k) for k in value):
                return f"{where or 'top level'}: a key"
            stack += reversed([(f"{where}.{k}" if where else k, v) for k, v in value.items()])
        elif isinstance(value, list):
            stack += reversed([(f"{where}[{i}]", v) for i, v in enumerate(value)])
    return None


def get(path: Path, where: str, obj: Any, key: str, kinds: tuple[type, ...], default: Any = _MISSING) -> Any:
    """obj[key] checked against `kinds` (a bool is never a number); `where` is e.g. "images[3]" or ""."""
    if not isinstance(obj, dict):
        raise BadInputError(
            f"{path}: {where or 'top level'}: expected a JSON object, got {type(obj).__name__}"
        )
    name = f"{where}.{key}" if where else key
    if key not in obj:
        if default is _MISSING:
            raise BadInputError(f"{path}: {name}: missing")
        return default
    value = obj[key]
    if not isinstance(value, kinds) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in kinds)
        raise BadInputError(f"{path}: {name}: expected {names}, got {type(value).__name__}")
    return value


def numbers(path: Path, where: str, value: Any, n: int) -> list[float]:
    """A list of exactly n finite numbers."""
    ok = isinstance(value, list) and len(value) == n
    ok = ok and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )
    if not ok:
        raise BadInputError(
            f"{path}: {where}: expected a list of {n} finite numbers, got {json.dumps(value)[:60]}"
        )
    return [float(v) for v in value]


def json_records(path: Path, what: str = "records") -> list[tuple[str, Any]]:
    """A JSON file whose top level is a list of records, each paired with its position ("[3]") for the
    one-line errors that name a field; any other top level is one line saying what was expected."""
    rows = load_json(path)
    if not isinstance(rows, list):
        raise BadInputError(f"{path}: top level must be a JSON list of {what}")
    return [(f"[{i}]", row) for i, row in enumerate(rows)]
