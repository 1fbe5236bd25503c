"""Peak resident memory of the benchmark process itself, and of the worker processes it started."""

from __future__ import annotations

import resource
from pathlib import Path


def own_peak_mb() -> float:
    """This process's own peak RSS (VmHWM). Not ru_maxrss: Linux carries the forking parent's RSS across
    exec into it, so a process started by a big parent would report the parent's size."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_mb() -> float:
    """The larger of our own peak and the largest waited-for child's (workers fork from us, still small)."""
    return max(own_peak_mb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
