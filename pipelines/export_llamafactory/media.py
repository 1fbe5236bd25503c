"""Where exported images go: content-addressed files under the export dir, or bytes embedded in the row.

Files are named by content (originals by the hash of their bytes, crops by that hash plus their box), so
an image shared by many trajectories is encoded and stored once; workers racing to write the same name
write identical bytes through a rename, so the race is harmless.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

from minio3_data.errors import ImageError
from minio3_data.fsutil import atomic_write_bytes
from minio3_data.images import open_header

ImageEntry = str | dict[str, object]  # a path relative to the export dir, or {"bytes", "path"} (HF Image)
FORMAT_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
# A file cut short keeps a valid header (LLaMA-Factory would crash on it mid-training); its missing end
# marker is the cheap tell, where a full decode is the cost this exporter avoids. JPEG scan data never
# holds FF D9 (0xFF is byte-stuffed), so finding it near the end is a sound test.
END_MARKERS = {"jpg": b"\xff\xd9", "png": b"IEND"}
END_WINDOW = 1024


def sniff(data: bytes, what: str) -> tuple[str, int, int]:
    """File extension, width and height from the header alone (no decode), refusing bombs and non-images."""
    try:
        with open_header(io.BytesIO(data), what) as im:
            fmt, (w, h) = im.format or "", im.size
    except ImageError:
        raise
    except Exception as e:  # PIL raises many types for non-images
        raise ImageError(f"{what}: not a readable image ({e.__class__.__name__})") from None
    if fmt not in FORMAT_EXT:
        raise ImageError(f"{what}: unsupported image format {fmt or 'unknown'}")
    ext = FORMAT_EXT[fmt]
    if ext in END_MARKERS and END_MARKERS[ext] not in data[-END_WINDOW:]:
        raise ImageError(f"{what}: truncated {fmt} data (no end marker)")
    return ext, w, h


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
