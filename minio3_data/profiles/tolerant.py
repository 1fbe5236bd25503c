"""The tolerant reading of a grounding's arguments, for text written by teachers.

Teachers (API models prompted with exemplars) write the arguments loosely: single quotes, no spaces, keys in
any order, code fences, a missing `source`, `nan` spelled any way, trailing prose. Profiles that read
teachers this way store the accepted action in canonical form (`ProtocolProfile.stored_turn`), so the
looseness never reaches a student. Nothing here evaluates code.
"""

from __future__ import annotations

import ast
import json
import re

from ..protocol import ORIGINAL

FORMAT_HINT = 'write {"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}'
FOUR_NUMBERS = "bbox_2d must hold exactly four numbers [x0, y0, x1, y1]"
_BBOX_RE = re.compile(r"""["']?bbox_2d["']?\s*:\s*(?:\[([^\]]*)\]|\(([^)]*)\))""")
_SOURCE_RE = re.compile(r"""["']?source["']?\s*:\s*["']([^"']*)["']""")


def _number(token: str) -> float:
    """One coordinate as written (int, float, exponent, nan/inf spelled any way)."""
    try:
        return float(token)
    except ValueError:
        raise ValueError(f"{FOUR_NUMBERS}; cannot read {short(token.strip())} as a number") from None


def short(value: object, limit: int = 24) -> str:
    """`value`'s repr, cut to `limit` characters for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_arguments(raw: str) -> object:
    """The arguments inside <grounding>...</grounding> (JSON, Python literals, or the two fields found
    directly); a one-element list around them is unwrapped. ValueError when nothing can be read."""
    raw = raw.strip()
    try:
        args = json.loads(raw)
    except (ValueError, RecursionError):
        try:
            args = ast.literal_eval(raw)  # literals only: never evaluates code
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            args = _fields(raw)
    if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
        return args[0]
    return args


def _fields(raw: str) -> dict[str, object]:
    """Code fences, `nan`, missing braces, trailing prose: the two fields read directly."""
    bbox = _BBOX_RE.search(raw)
    if not bbox:
        raise ValueError(f"cannot read the grounding; {FORMAT_HINT}")
    inner = bbox.group(1) if bbox.group(1) is not None else bbox.group(2)
    coords = [_number(t) for t in inner.split(",")] if inner.strip() else []
    source = _SOURCE_RE.search(raw)
    return {"bbox_2d": coords, "source": source.group(1) if source else ORIGINAL}
