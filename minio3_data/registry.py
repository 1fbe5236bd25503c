"""Named objects found by module: a package whose modules each define one object of a kind under one name
(profiles/ defines PROFILE, families/ FAMILY). Adding one is adding a module; a name is resolved once, with one
message for an unknown name."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping
from typing import Protocol, TypeVar

from .errors import BadInputError


class Named(Protocol):
    name: str
    summary: str


T = TypeVar("T", bound=Named)


def discover(package: str, path: Iterable[str], attr: str, kind: type[T], default: str) -> dict[str, T]:
    """Every module's `attr` of type `kind` in `package` (at `path`) by name: `default` first, the others by name."""
    found: dict[str, T] = {}
    for info in pkgutil.iter_modules(path):
        obj = getattr(importlib.import_module(f"{package}.{info.name}"), attr, None)
        if isinstance(obj, kind):
            found[obj.name] = obj
    return {default: found.pop(default), **dict(sorted(found.items()))}


def lookup(table: Mapping[str, T], name: str, where: str) -> T:
    """`table[name]`; for another name a one-line error naming `where` it came from and the choices."""
    try:
        return table[name]
    except (KeyError, TypeError):
        raise BadInputError(f"{where} {name!r}: use one of {', '.join(table)}") from None


def help_text(table: Mapping[str, Named]) -> str:
    """The choices for an option's help: each name and its summary."""
    return " | ".join(f"{obj.name} ({obj.summary})" for obj in table.values())
