"""Arrow schemas derived from dataclasses, so a record's fields are its one definition.

Adding a field to a record adds its column; nothing is kept in step by hand. Columns follow the field
order, every column is nullable (Optional only documents intent), and Literal strings are plain strings.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

import pyarrow as pa

_SCALARS: dict[Any, pa.DataType] = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}


def arrow_type(hint: Any) -> pa.DataType:
    """The Arrow type of a resolved hint: scalar, list[...], X | None, Literal of str, or a dataclass."""
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is list:
        return pa.list_(arrow_type(args[0]))
    if origin in (typing.Union, types.UnionType):
        present = [a for a in args if a is not type(None)]
        if len(present) == 1:
            return arrow_type(present[0])
    if origin is typing.Literal and all(isinstance(a, str) for a in args):
        return pa.string()
    if dataclasses.is_dataclass(hint):
        return pa.struct(arrow_fields(hint))
    raise TypeError(f"no Arrow type for {hint!r}")


def arrow_fields(cls: type) -> list[pa.Field]:
    """One Arrow field per dataclass field, in declaration order."""
    hints = typing.get_type_hints(cls)
    return [pa.field(f.name, arrow_type(hints[f.name])) for f in dataclasses.fields(cls)]


def arrow_schema(cls: type) -> pa.Schema:
    return pa.schema(arrow_fields(cls))


def readable_as(actual: pa.DataType, expected: pa.DataType) -> bool:
    """Whether a column written by another tool holds what `expected` means without a lossy cast: any
    string width for a string, any integer for an int, numbers for a float, lists of those for a list.
    Arrow itself would cast bytes or ints to strings silently, so a bytes question would pass unseen."""
    if pa.types.is_null(actual):
        return True
    if pa.types.is_string(expected):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual)
    if pa.types.is_integer(expected):
        return pa.types.is_integer(actual)
    if pa.types.is_floating(expected):
        return pa.types.is_floating(actual) or pa.types.is_integer(actual)
    if pa.types.is_list(expected):
        lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
        return any(is_list(actual) for is_list in lists) and readable_as(actual.value_type, expected.value_type)
    return actual == expected
