"""The filter language of `minio3 view --filter` and of the index page's filter box: one small grammar.

    EXPR    := CLAUSE ("," CLAUSE)*          every clause must hold
    CLAUSE  := FIELD OP VALUE ("|" VALUE)*   "|" lists alternatives (= and != only)
    OP      := "=" | "!=" | ">=" | "<=" | ">" | "<"   (the order ones on numeric fields only)

e.g. `status=answered,verdict=wrong|unjudged,turns>=4,pattern=backtrack`. A list field (pattern tags)
matches `=` when any of its values is listed and `!=` when none is. Text is split and compared, never
evaluated. The page's script implements the same grammar (script.py), and the browser test checks that
both hide the same rows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from minio3_data.errors import BadInputError

Value = str | int | float | list[str] | None
OPS = ("!=", ">=", "<=", "=", ">", "<")  # two-character ones first, so ">=" is never read as ">" then "="
ORDER_OPS = (">=", "<=", ">", "<")
_CLAUSE_RE = re.compile(rf"\s*([a-z_]+)\s*({'|'.join(map(re.escape, OPS))})\s*(.*?)\s*")


@dataclass(frozen=True)
class Field:
    """One column of an index: its name in filters, its heading, and how its values compare."""

    name: str
    label: str
    numeric: bool = False
    multi: bool = False  # a list of values, e.g. pattern tags
    choices: bool = True  # offered as a drop-down on the page (else only typed)
    column: bool = True  # shown as a column of the index (else only filtered on)


@dataclass(frozen=True)
class Clause:
    field: str
    op: str
    values: tuple[str, ...]


def parse_filter(expr: str | None, fields: Sequence[Field]) -> list[Clause]:
    """The clauses of `expr` (none for an empty one); a bad clause is a one-line error naming it."""
    by_name = {f.name: f for f in fields}
    clauses: list[Clause] = []
    for part in (expr or "").split(","):
        if not part.strip():
            continue
        m = _CLAUSE_RE.fullmatch(part)
        if m is None:
            raise BadInputError(
                f"--filter {part.strip()!r}: write FIELD=VALUE (or !=, >=, <=, >, <), e.g. status=answered"
            )
        name, op, raw = m.groups()
        field = by_name.get(name)
        if field is None:
            raise BadInputError(
                f"--filter {part.strip()!r}: no field {name!r}; use one of {', '.join(by_name)}"
            )
        values = tuple(v.strip() for v in raw.split("|"))
        if not all(values):
            raise BadInputError(f"--filter {part.strip()!r}: give a value after {op!r}")
        if op in ORDER_OPS:
            if not field.numeric:
                raise BadInputError(
                    f"--filter {part.strip()!r}: {op} compares numbers; {name} is text, use = or !="
                )
            if len(values) > 1 or _number(values[0]) is None:
                raise BadInputError(f"--filter {part.strip()!r}: {op} takes one number")
        clauses.append(Clause(name, op, values))
    return clauses


def _number(text: str) -> float | None:
    """The number `text` spells, or None; "nan" is none (it compares false with every value, and the page's
    script refuses it too)."""
    try:
        number = float(text)
    except ValueError:
        return None
    return None if math.isnan(number) else number


def _equal(value: Value, wanted: str) -> bool:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = _number(wanted)
        return number is not None and float(value) == number
    return str(value if value is not None else "") == wanted


def _holds(clause: Clause, value: Value) -> bool:
    if clause.op in ORDER_OPS:
        if not isinstance(value, (int, float)):
            return False
        limit = float(clause.values[0])
        return {">=": value >= limit, "<=": value <= limit, ">": value > limit, "<": value < limit}[clause.op]
    items = value if isinstance(value, list) else [value]
    listed = any(_equal(item, wanted) for item in items for wanted in clause.values)
    return listed if clause.op == "=" else not listed


def matches(values: Mapping[str, Value], clauses: Sequence[Clause]) -> bool:
    """Whether an index row (field name -> value) passes every clause."""
    return all(_holds(c, values.get(c.field)) for c in clauses)
