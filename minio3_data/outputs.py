"""Output dirs: each has one writer at a time, and none may be, contain or sit inside an input.

Every command that writes a dir claims it first (`claim_output`): the path is resolved (symlinks too),
refused when it overlaps an input (a `--overwrite` would delete the input) or lies under a regular file,
and locked with `flock` on a hidden file beside it (`.NAME.minio3-lock`, holding the writer's pid). The
kernel drops the lock when its process dies, even by SIGKILL, so a lock is never stale; a second writer is
refused at once, naming the holder's pid.

The inputs are the dirs a command is given and every dir their records name (a run's dataset,
an export's images: minio3_data.named_dirs), found here, so no command has to list them itself.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from .errors import BadInputError
from .named_dirs import named_dirs

LOCK_SUFFIX = ".minio3-lock"
_WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO})
Inputs = Iterable[tuple[str, "str | os.PathLike | None"]]  # (option naming it, path); None when not given

_held: set[int] = set()  # lock fds of this process


def _close_held_in_child() -> None:
    """A forked worker must not keep its parent's locks alive after the parent dies."""
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


class OutputBusyError(BadInputError):
    """Another process is writing the output dir."""


def lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}{LOCK_SUFFIX}"


def _is_open_file(fd: int, path: Path) -> bool:
    """Whether `path` still names the file open as `fd` (a releasing holder unlinks it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _acquire(out: Path) -> int:
    path = lock_path(out)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise OutputBusyError(
                f"{out}: another minio3 process (pid {holder}) is writing it; "
                "wait for it to end or pick another --out"
            ) from None
        if _is_open_file(fd, path):
            return fd
        os.close(fd)  # locked a file its holder had just removed: lock the current one


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold the one-writer lock of output dir `out` (an absolute, resolved path) for the block."""
    fd = _acquire(out)
    _held.add(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path(out))  # while still locked, so no one else holds a lock on the removed file
        _held.discard(fd)
        os.close(fd)


def resolve_output(out: str | os.PathLike) -> Path:
    """`out` made absolute with symlinks resolved; a path under a regular file is refused."""
    resolved = Path(out).resolve()
    for p in (resolved, *resolved.parents):
        if p.exists():
            if not p.is_dir():
                what = "is a file" if p == resolved else f"is under {p}, which is a file"
                raise BadInputError(f"--out {out}: {what}; give a directory")
            break
    return resolved


class ReadDir(NamedTuple):
    path: Path  # resolved
    name: str  # how an error names it: "--run runs/a", or "dataset /d, which --run runs/a names in run.json"


def _named(d: ReadDir) -> Iterator[ReadDir]:
    for n in named_dirs(d.path):
        yield ReadDir(n.path, f"{n.what} {n.path}, which {d.name} names in {n.record}")


def read_dirs(inputs: Inputs, resumed: ReadDir | None = None) -> list[ReadDir]:
    """The inputs and, transitively, every dir their records name; with `resumed` (an output the command
    continues, reading its records), every dir its records name too."""
    found = [ReadDir(Path(p).resolve(), f"{option} {p}") for option, p in inputs if p is not None]
    seen = {d.path for d in found}
    pending = [*found, *([resumed] if resumed else [])]
    while pending:
        for named in _named(pending.pop()):
            if named.path not in seen:
                seen.add(named.path)
                found.append(named)
                pending.append(named)
    return found


def _relation(out: Path, read: Path) -> str:
    if out == read:
        return "is"
    return "contains" if out in read.parents else "is inside" if read in out.parents else ""


def refuse_overlap(
    out: str | os.PathLike, inputs: Inputs, *, option: str = "--out", resumes: bool = False
) -> None:
    """An output that is, contains or sits inside an input would overwrite or delete it: refuse it. `option`
    names the output; `resumes`: the command continues `out`, so what its records name is read too."""
    o = Path(out).resolve()
    for read in read_dirs(inputs, ReadDir(o, f"{option} {out}") if resumes else None):
        relation = _relation(o, read.path)
        if relation:
            raise BadInputError(
                f"{option} {out} {relation} the input {read.name}; an output may never be, contain or sit "
                "inside an input"
            )


@contextlib.contextmanager
def claim_output(out: str | os.PathLike, inputs: Inputs = (), resumes: bool = False) -> Iterator[Path]:
    """Check `out` against the inputs (`resumes`: as refuse_overlap), then hold its lock for the block; yields
    the resolved path.

    A write error that names no file (a disk filling up mid-write) is reported against `out`."""
    resolved = resolve_output(out)
    refuse_overlap(out, inputs, resumes=resumes)
    resolved.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(resolved):
        try:
            yield resolved
        except OSError as e:
            if e.filename is None and e.errno in _WRITE_ERRNOS:
                raise OSError(e.errno, e.strerror, str(resolved)) from e
            raise
