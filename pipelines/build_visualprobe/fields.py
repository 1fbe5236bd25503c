"""Field access for annotation files that fails with one line naming the file and the field."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError

_MISSING = object()


def load_json(path: Path) -> Any:
    """Parse a JSON file; unreadable or invalid JSON is a one-line error naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such annotation file") from None
    except json.JSONDecodeError as e:
        raise BadInputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise BadInputError(f"{path}: JSON nested too deeply to be annotations") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInputError(f"{path}: cannot read ({e.__class__.__name__})") from None


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
