"""User-facing errors: one line that names the item or file and says what to do.

The CLI catches `Minio3Error` and prints `str(err)` without a traceback; anything else is a bug.
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


class StorageError(Minio3Error):
    """Writing an output failed (disk full, read-only, I/O error): the run stops, it is not the attempt's fault."""

    @classmethod
    def from_os(cls, path: str | os.PathLike, e: OSError) -> StorageError:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            return cls(f"disk full writing {path}; free space and rerun")
        return cls(f"cannot write {path}: {e.strerror or e}; fix it and rerun")
