"""Where exported images go: content-addressed files under the export dir, or bytes embedded in the row.

Files are named by content (originals by the hash of their bytes, crops by that hash plus their box), so
an image shared by many trajectories is encoded and stored once; workers racing to write the same name
write identical bytes through a rename, so the race is harmless.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from minio3_data.fsutil import atomic_write_bytes
from minio3_data.images import END_MARKERS, END_WINDOW, FORMAT_EXT, sniff

# Image bytes are sniffed by the core library (build-visualprobe names stored benchmark images with it too);
# the names stay importable from here for the exporter's sources.
__all__ = ["END_MARKERS", "END_WINDOW", "FORMAT_EXT", "ImageEntry", "ImageSink", "sniff"]

ImageEntry = str | dict[str, object]  # a path relative to the export dir, or {"bytes", "path"} (HF Image)


class ImageSink:
    """Stores images for the rows of one export; `root=None` embeds bytes (parquet) instead of writing files."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def put(self, rel: str, data: Callable[[], bytes]) -> ImageEntry:
        """Store the image named `rel` (relative, content-addressed); `data` is called only if needed."""
        if self.root is None:
            return {"bytes": data(), "path": os.path.basename(rel)}
        path = self.root / rel
        if not path.exists():
            atomic_write_bytes(path, data(), fsync=False)  # the export dir is renamed into place when complete
        return rel
