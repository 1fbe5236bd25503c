"""User-facing errors: one line that names the item or file and says what to do.

The CLI catches `Minio3Error` and prints `str(err)` without a traceback, and an `OSError` (the disk or the
filesystem, not the code) as `describe_os_error`; anything else is a bug.
"""

from __future__ import annotations

import errno
import os


class Minio3Error(Exception):
    """An error caused by the user's input or environment, printed as one line."""


class BadInputError(Minio3Error):
    """A file, item or option is invalid (names it and why)."""


class ImageError(BadInputError):
    """An image is missing, corrupt, too large or outside its allowed root."""


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _disk_full(where: object) -> str:
    return f"disk full{f' writing {where}' if where else ''}; free space and rerun"


class StorageError(Minio3Error):
    """Writing an output failed (disk full, read-only, I/O error): the run stops, it is not the attempt's fault."""

    @classmethod
    def from_os(cls, path: str | os.PathLike, e: OSError) -> StorageError:
        if e.errno in DISK_FULL:
            return cls(_disk_full(path))
        return cls(f"cannot write {path}: {e.strerror or e}; fix it and rerun")


def describe_os_error(e: OSError) -> str:
    """One line for a filesystem error that reached the CLI, naming the file(s) it names."""
    where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
    if e.errno in DISK_FULL:
        return _disk_full(where)
    return f"{where}: {e.strerror or e}" if where else str(e.strerror or e)
