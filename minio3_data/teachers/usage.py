"""A server's token counts, read as the input they are: junk (text, negatives, fractions, absurd sizes, a
usage that is not an object) makes the reply's usage unknown, never a crash and never a lost reply.

A reply with unknown usage counts no tokens and no cost, and says why under `Reply.extra[USAGE_UNKNOWN]`,
which the reply log keeps, so a run can report how many of its replies had usage it could not read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..records import Usage

USAGE_UNKNOWN = "usage_unknown"  # Reply.extra key: why the server's usage could not be read
MAX_TOKEN_COUNT = 100_000_000  # more tokens than any model's context in one request: not a count but junk


def token_count(value: Any) -> int:
    """A token count as a server sent it; absent (None) is 0. Anything else but a whole number in
    [0, MAX_TOKEN_COUNT] raises ValueError."""
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKEN_COUNT:
        raise ValueError(f"{value!r:.40} is not a token count")
    return value


def read_usage(raw: Any, read: Callable[[dict[str, Any]], Usage], extra: dict[str, Any]) -> Usage:
    """`read(raw)` (a backend's reading of its usage object), or, for a usage that is neither absent nor
    readable, an empty Usage with the reason recorded in `extra` under USAGE_UNKNOWN."""
    if raw is None:
        return Usage()  # a server may leave usage out: nothing to read, nothing junk
    try:
        if not isinstance(raw, dict):
            raise ValueError(f"usage is a {type(raw).__name__}, not an object")
        return read(raw)
    except (ValueError, TypeError, AttributeError) as e:
        extra[USAGE_UNKNOWN] = str(e)
        return Usage()
