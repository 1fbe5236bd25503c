"""Atomic file and directory output, safe relative paths, and content hashes for output file names.

Every stage finalises its outputs with a rename, so a killed run never leaves a half-written file or dataset.
Files copied or written into an output are named by their content, never by a path an input gave.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from .errors import BadInputError
from .outputs import Inputs, OutputBusyError, claim_output, output_lock

# what atomic_dir makes beside its output, named by it: the temp dir, and the old output while it is replaced
_TMP_RE = re.compile(r"\.(?P<name>.+)\.(?:tmp-\d+-\w+|old-\d+)")
HASH_CHARS = 32


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _public(path: str | os.PathLike, mode: int) -> None:
    """mkstemp/mkdtemp create 0600/0700; give outputs the permissions a plain open()/mkdir() would."""
    os.chmod(path, mode & ~_umask())


def atomic_write_bytes(path: str | os.PathLike, data: bytes, fsync: bool = True) -> None:
    """Write `data` to `path` via a temp file in the same dir, fsync (unless told not to: thousands of
    files inside a dir that is itself renamed into place at the end), then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        _public(tmp, 0o666)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it onto `path` only if the block succeeds.

    For writers that want a file name (pyarrow, matplotlib) rather than bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        _public(tmp, 0o666)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def check_output_dir(out: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse a non-empty output dir unless `overwrite` is set (then it is replaced at the end)."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise BadInputError(f"{out}: output exists and is not empty; pass --overwrite to replace it")
    return out


def _refuse_replacing_cwd(out: Path) -> None:
    """A dir renamed into place cannot be the one the user stands in (or `/`): refused before any work."""
    cwd = Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        raise BadInputError(
            f"--out {out}: is the current directory or one of its parents; give a new directory to build into"
        )


def _remove_abandoned(out: Path) -> None:
    """Delete the temp dirs (and old outputs caught mid-replace) that killed builds left beside `out`, whose
    lock the caller holds: its own, and those of every other output in that dir that no process is building
    now."""
    for tmp in out.parent.glob(".*.*-*"):
        m = _TMP_RE.fullmatch(tmp.name)
        if m is None or not tmp.is_dir():
            continue
        if m["name"] == out.name:
            shutil.rmtree(tmp, ignore_errors=True)
            continue
        with contextlib.suppress(OutputBusyError), output_lock(out.parent / m["name"]):
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(out: str | os.PathLike, overwrite: bool = False, inputs: Inputs = ()) -> Iterator[Path]:
    """Build a directory in a temp sibling and rename it onto `out` when the block succeeds.

    Before any work, `out` is claimed (outputs.claim_output: never overlapping `inputs`, locked for the
    whole block) and checked. A killed build leaves only a hidden `.out.tmp-*` sibling, never a half
    dataset at `out`; the next build into the same parent dir removes it.
    """
    _refuse_replacing_cwd(Path(out).resolve())
    with claim_output(out, inputs) as final:
        check_output_dir(final, overwrite)
        _remove_abandoned(final)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-{os.getpid()}-"))
        try:
            yield tmp
            _public(tmp, 0o777)
            if final.exists():
                old = final.with_name(f".{final.name}.old-{os.getpid()}")
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


def is_absolute(rel: str) -> bool:
    """A path that names its own root (POSIX, a Windows drive or a backslash root): never relative to a dir."""
    return os.path.isabs(rel) or rel.startswith(("/", "\\")) or (len(rel) > 1 and rel[1] == ":")


def leaves_its_dir(rel: str) -> bool:
    """Whether `rel`, read as text alone, can point outside the dir it is relative to: absolute, or a '..' step.
    (safe_relpath also follows symlinks, which only the file system can tell.)"""
    return is_absolute(rel) or ".." in re.split(r"[/\\]", rel)


def safe_relpath(root: str | os.PathLike, rel: str, what: str = "path") -> Path:
    """Resolve `rel` under `root`, refusing absolute paths and paths that escape `root`."""
    if "\0" in rel:
        raise BadInputError(f"{what} {rel!r}: holds a NUL byte, which no file name can")
    if not rel or is_absolute(rel):
        raise BadInputError(f"{what} {rel!r}: absolute paths are refused; give a path relative to {root}")
    root_resolved = Path(root).resolve()
    full = (root_resolved / rel).resolve()
    if full != root_resolved and root_resolved not in full.parents:
        raise BadInputError(f"{what} {rel!r}: escapes {root}; paths must stay inside it")
    return full


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


@lru_cache(maxsize=4096)
def _file_hash(path: str, mtime_ns: int, size: int) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:HASH_CHARS]


def file_hash(path: Path) -> str:
    """Hash of a file's bytes, remembered per (path, mtime, size) so a shared original is read once."""
    st = path.stat()
    return _file_hash(str(path), st.st_mtime_ns, st.st_size)
