"""User-facing errors: one line that names the item or file and says what to do.

The CLI catches `Minio3Error` and prints `str(err)` without a traceback; anything else is a bug.
"""

from __future__ import annotations


class Minio3Error(Exception):
    """An error caused by the user's input or environment, printed as one line."""


class BadInputError(Minio3Error):
    """A file, item or option is invalid (names it and why)."""


class ImageError(BadInputError):
    """An image is missing, corrupt, too large or outside its allowed root."""
