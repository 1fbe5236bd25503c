"""Order-preserving parallel map and per-task seeds: output never depends on --workers."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
from collections.abc import Callable, Generator, Sequence
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


def task_seed(seed: int, split: str, index: int) -> int:
    """A 63-bit seed for one item, derived from (run seed, split, index) and nothing else."""
    digest = hashlib.sha256(f"{seed}:{split}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def ordered_map(
    fn: Callable[[T], R], tasks: Sequence[T], workers: int, desc: str
) -> Generator[R, None, None]:
    """Yield fn(task) in task order, computed in `workers` spawned processes when workers > 1.

    Closing the iterator early (break) terminates the pool, so callers may stop once they have enough.
    """
    with tqdm(total=len(tasks), desc=desc, unit="item", disable=None) as bar:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                yield fn(task)
                bar.update()
            return
        with mp.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
            for result in pool.imap(fn, tasks, chunksize=1):
                yield result
                bar.update()
