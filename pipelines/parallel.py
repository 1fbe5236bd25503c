"""An ordered, bounded map over worker processes, shared by the dataset build, the export and the viewer.

`multiprocessing.Pool.imap` drains its input eagerly, so 50,000 trajectories (or 4 GB of released
parquet) would be read into memory ahead of the workers. Here at most `workers * AHEAD` tasks are in
flight, and results come back in input order, so an output never depends on the worker count.

Workers die with the process that feeds them (kill -9 included): left behind, they would wait on an orphaned
queue for good, or go on writing into a temp dir the next run removes. A worker that dies (the OOM killer, a
crash in a decoder) stops the map with one line naming the task it was running (`WorkerDiedError`).
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from tqdm import tqdm

from minio3_data.errors import Minio3Error

T = TypeVar("T")
R = TypeVar("R")
AHEAD = 3
MAX_DEFAULT_WORKERS = 8
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class WorkerDiedError(Minio3Error):
    """A worker process ended abruptly (killed, out of memory, crashed): names the task it was running."""


class _Slot(ctypes.Structure):
    """A worker's row in the table its pool shares: its pid, the index + 1 of the task it runs (0: none)."""

    _fields_ = [("pid", ctypes.c_int64), ("task", ctypes.c_int64)]


# one of each per worker process, set by its initializer
_function: Callable[[Any], Any] | None = None  # unpickled once
_slot: _Slot | None = None


def default_workers() -> int:
    """The CPUs this process may run on, at most MAX_DEFAULT_WORKERS."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_WORKERS, usable))


def span(ids: Sequence[str]) -> str:
    """A task of several items, named by its first and last (what a dead worker's error names)."""
    return ids[0] if len(ids) == 1 else f"{ids[0]} to {ids[-1]} ({len(ids)} items)"


def _exit_when_ended(parent: BaseProcess) -> None:
    parent.join()  # on its sentinel, a pipe at EOF once the parent has ended
    os._exit(1)


def _die_with_parent(kernel_signal: bool) -> None:
    """On Linux the kernel SIGKILLs the worker the moment its parent ends; where it cannot, a thread waiting
    on the parent's sentinel ends it. A parent that ended before the prctl sends no signal: checked after it."""
    parent = mp.parent_process()
    assert parent is not None, "only a worker process has a parent to die with"
    if kernel_signal and sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if not parent.is_alive():
        os._exit(1)
    threading.Thread(target=_exit_when_ended, args=(parent,), name="parent-watch", daemon=True).start()


def _init_worker(fn: Callable[[Any], Any], table: Any, claimed: Any, kernel_signal: bool) -> None:
    global _function, _slot
    _die_with_parent(kernel_signal)
    with claimed.get_lock():
        _slot = table[claimed.value]
        claimed.value += 1
    _slot.pid = os.getpid()
    _function = fn


def _run(index: int, task: Any) -> Any:
    assert _function is not None and _slot is not None, "worker used before its initializer ran"
    _slot.task = index + 1
    try:
        return _function(task)
    finally:
        _slot.task = 0


def _how(exitcode: int | None) -> str:
    if exitcode == -signal.SIGKILL:
        return "killed by SIGKILL; if memory ran out, rerun with fewer --workers"
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def _died(
    processes: list[BaseProcess], table: Any, pending: Iterable[tuple[int, T, Any]], name: Callable[[T], str]
) -> WorkerDiedError:
    """The error naming the task of the worker that broke the pool (`table` says which task each one ran).

    Once one worker dies the pool SIGTERMs the others, so it is the one that ended otherwise (if all ended by
    SIGTERM, the one running the earliest task)."""
    running = {row.pid: row.task - 1 for row in table if row.pid and row.task}
    dead = min(
        processes, key=lambda p: (p.exitcode == -signal.SIGTERM, p.pid not in running, running.get(p.pid, 0))
    )
    task = next((name(t) for i, t, _ in pending if i == running.get(dead.pid)), None)
    where = f"while working on {task}" if task else "while it ran no task"
    return WorkerDiedError(f"a worker process died {where} ({_how(dead.exitcode)})")


def _first_result(pending: deque[tuple[int, Any, Future[R]]]) -> R:
    """The result of the first pending task, which stays pending until it is there (a dead worker's error
    names it)."""
    result = pending[0][2].result()
    pending.popleft()
    return result


def ordered_map(
    fn: Callable[[T], R], tasks: Iterable[T], workers: int, desc: str | None = None,
    start_method: str | None = "spawn", *, name: Callable[[T], str],
) -> Iterator[R]:
    """Yield fn(task) for each task, in order; `fn` (picklable, sent once to each worker) runs in
    `workers` processes, or in this one when workers <= 1 (simple tracebacks and profiles).

    `start_method` "spawn" (safe whatever threads the parent runs) costs each worker a fresh interpreter
    and its imports, about a second; None takes the platform's default (fork on Linux), for callers
    whose whole job may take only seconds.

    `desc` shows a progress bar over the tasks. Closing the iterator early (break, contextlib.closing)
    cancels the tasks not yet started and ends the pool, so callers may stop once they have enough.
    `name(task)` says what a task holds, for the `WorkerDiedError` raised when its worker dies.
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
        table, claimed = context.Array(_Slot, workers, lock=False), context.Value(ctypes.c_int, 0)
        # the kernel's "parent" is the thread that starts a worker; only the main one surely outlives the pool
        kernel_signal = threading.current_thread() is threading.main_thread()
        pool = ProcessPoolExecutor(
            workers, context, initializer=_init_worker, initargs=(fn, table, claimed, kernel_signal)
        )
        pending: deque[tuple[int, T, Future[R]]] = deque()
        try:
            for index, task in enumerate(tasks):
                pending.append((index, task, pool.submit(_run, index, task)))
                if len(pending) >= workers * AHEAD:
                    yield _first_result(pending)
                    bar.update()
            while pending:
                yield _first_result(pending)
                bar.update()
        except BrokenProcessPool:
            processes = list(pool._processes.values())  # their exit codes tell which one died first
            pool.shutdown(wait=True)
            raise _died(processes, table, pending, name) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
