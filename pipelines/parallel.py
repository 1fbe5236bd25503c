"""An ordered, bounded map over worker processes, shared by the dataset build and the export.

`multiprocessing.Pool.imap` drains its input eagerly, so 50,000 trajectories (or 4 GB of released
parquet) would be read into memory ahead of the workers. Here at most `workers * AHEAD` tasks are in
flight, and results come back in input order, so an output never depends on the worker count.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")
AHEAD = 3
MAX_DEFAULT_WORKERS = 8

_function: Callable[[Any], Any] | None = None  # one per worker process, unpickled once by its initializer


def default_workers() -> int:
    """The CPUs this process may run on, at most MAX_DEFAULT_WORKERS."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_WORKERS, usable))


def _init_worker(fn: Callable[[Any], Any]) -> None:
    global _function
    _function = fn


def _run(task: Any) -> Any:
    assert _function is not None, "worker used before its initializer ran"
    return _function(task)


def ordered_map(
    fn: Callable[[T], R], tasks: Iterable[T], workers: int, desc: str | None = None,
    start_method: str | None = "spawn",
) -> Iterator[R]:
    """Yield fn(task) for each task, in order; `fn` (picklable, sent once to each worker) runs in
    `workers` processes, or in this one when workers <= 1 (simple tracebacks and profiles).

    `start_method` "spawn" (safe whatever threads the parent runs) costs each worker a fresh interpreter
    and its imports, about a second; None takes the platform's default (fork on Linux), for callers
    whose whole job may take only seconds.

    `desc` shows a progress bar over the tasks. Closing the iterator early (break, contextlib.closing)
    cancels the tasks not yet started and ends the pool, so callers may stop once they have enough.
    """
    total = len(tasks) if hasattr(tasks, "__len__") else None
    with tqdm(total=total, desc=desc, unit="item", disable=None if desc else True) as bar:
        if total is not None:
            workers = min(workers, total)
        if workers <= 1:
            for task in tasks:
                yield fn(task)
                bar.update()
            return
        context = mp.get_context(start_method)
        pool = ProcessPoolExecutor(workers, context, initializer=_init_worker, initargs=(fn,))
        pending: deque[Future[R]] = deque()
        try:
            for task in tasks:
                pending.append(pool.submit(_run, task))
                if len(pending) >= workers * AHEAD:
                    yield pending.popleft().result()
                    bar.update()
            while pending:
                yield pending.popleft().result()
                bar.update()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
