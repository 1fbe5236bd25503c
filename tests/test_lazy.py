"""`lazy` caches per instance and lets threads compute different instances at the same time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from minio3_data.lazy import lazy


@dataclass(frozen=True)
class Pixels:
    n: int
    meeting: threading.Barrier

    @lazy
    def encoded(self) -> bytes:
        """Both threads must be inside at once: a lock shared by all instances would time this out."""
        self.meeting.wait(timeout=5)
        return bytes([self.n]) * 3


def test_different_instances_compute_concurrently_and_each_once():
    meeting = threading.Barrier(2)
    a, b = Pixels(1, meeting), Pixels(2, meeting)
    with ThreadPoolExecutor(2) as pool:
        assert list(pool.map(lambda p: p.encoded, [a, b])) == [b"\x01" * 3, b"\x02" * 3]
    meeting.abort()  # a second computation would now raise BrokenBarrierError
    assert a.encoded is a.encoded and b.encoded == b"\x02" * 3
    assert Pixels.encoded.__doc__.startswith("Both threads")
