"""An ordered, bounded map of chunks over worker processes.

`multiprocessing.Pool.imap` drains its input eagerly, so 50,000 trajectories (or 4 GB of released
parquet) would be read into memory ahead of the workers. Here at most `workers * AHEAD` chunks are in
flight; results come back in input order, so the export is deterministic whatever the worker count.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")
AHEAD = 3

_converter: Callable[[Any], Any] | None = None  # one per worker process, unpickled once by its initializer


def _init_worker(convert: Callable[[Any], Any]) -> None:
    global _converter
    _converter = convert


def _run(chunk: Any) -> Any:
    assert _converter is not None, "worker used before its initializer ran"
    return _converter(chunk)


def ordered_map(convert: Callable[[T], R], chunks: Iterable[T], workers: int) -> Iterator[R]:
    """Apply `convert` (a picklable callable, sent once to each worker) to each chunk, in order.

    `workers <= 1` runs in this process, which keeps tracebacks and profiles simple.
    """
    if workers <= 1:
        yield from map(convert, chunks)
        return
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(convert,))
    pending: deque[Future[R]] = deque()
    try:
        for chunk in chunks:
            pending.append(pool.submit(_run, chunk))
            if len(pending) >= workers * AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
