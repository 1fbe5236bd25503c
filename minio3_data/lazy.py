"""`lazy`: a per-instance cached attribute without `functools.cached_property`'s lock.

Before Python 3.12, `cached_property` holds one lock per class attribute while it computes, so the
computation for one instance waits for every other instance's: worker threads encoding different
images ran one at a time. `lazy` takes no lock. Two threads asking the same instance at once may both
compute; use it only for values that are pure functions of the instance, where either result is right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class lazy(Generic[T]):  # noqa: N801 (used like the decorator it replaces)
    def __init__(self, compute: Callable[[Any], T]) -> None:
        self.compute = compute
        self.name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> lazy[T]: ...
    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | lazy[T]:
        if instance is None:
            return self
        value = self.compute(instance)
        # no __set__: once stored in the instance's __dict__ (frozen dataclasses too), lookups find it
        # there and never reach this descriptor again
        instance.__dict__[self.name] = value
        return value
