"""Source images for the coco and official sources: validated in workers, copied into the dataset dir.

A missing, corrupt, oversized (over --max-pixels, or a decompression bomb) or unsafe (absolute, escaping)
image becomes a reason string, so the caller skips it and lists it in excluded.jsonl instead of failing the
whole build. A copy is named by its content, never by the path the annotations gave, so no file_name can
steer it outside the dataset dir.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from PIL import Image

from minio3_data.errors import BadInputError
from minio3_data.fsutil import atomic_write_bytes, content_hash, file_hash, safe_relpath
from minio3_data.images import check_pixels, image_size, open_image

from ..parallel import ordered_map

VALIDATE_PIXELS = 250_000  # decode at reduced scale: enough to catch truncated or corrupt files
DEFAULT_MAX_PIXELS = 100_000_000  # a dataset image above this costs gigabytes per worker to decode
_SUFFIX_RE = re.compile(r"\.[a-z0-9]{1,5}")


def check_image(task: tuple[str, str, int]) -> tuple[int, int] | str:
    """(root, relative path, max pixels) -> the image's (width, height), or why it cannot be used."""
    root, rel, max_pixels = task
    try:
        path = safe_relpath(root, rel, "image path")
        size = image_size(path)
        check_pixels(path, *size, limit=max_pixels, raise_with="--max-pixels N")  # before the decode it saves
        open_image(path, draft_pixels=VALIDATE_PIXELS)
    except BadInputError as e:  # ImageError is one: missing, corrupt, bomb; safe_relpath: unsafe path
        return str(e)
    return size


def image_task_name(task: tuple[str, str, int]) -> str:
    """The image a `check_image` task reads, as its error names it."""
    return f"image {task[1]}"


def copy_image(root: Path, rel: str, dataset: Path) -> str:
    """Copy a checked image to dataset/images/<content hash><suffix>; returns its dataset-relative path.

    Same bytes, same name: a build is reproducible, and an image named twice is stored once."""
    src = safe_relpath(root, rel, "image path")
    suffix = PurePosixPath(rel).suffix.lower()
    dest_rel = f"images/{file_hash(src)}{suffix if _SUFFIX_RE.fullmatch(suffix) else ''}"
    dest = dataset / dest_rel
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    return dest_rel


Imported = tuple[str, tuple[int, int]] | str  # (dataset-relative copy, (width, height)), or why not usable


def import_images(root: Path, rels: Iterable[str], dataset: Path, *, workers: int, max_pixels: int) -> dict[str, Imported]:
    """Check each distinct image path under `root` (in `workers` processes) and copy the usable ones into the
    dataset dir; what a source's rows then point at, or the reason to skip them."""
    rels = sorted(set(rels))
    tasks = [(str(root), rel, max_pixels) for rel in rels]
    checked = ordered_map(check_image, tasks, workers, "images", name=image_task_name)
    return {rel: size if isinstance(size, str) else (copy_image(root, rel, dataset), size)
            for rel, size in zip(rels, checked)}


IMAGE_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}


def save_image_bytes(data: bytes, dataset: Path) -> str:
    """Store embedded image bytes (a benchmark's base64 column) as dataset/images/<content hash><suffix>, the
    name `copy_image` gives the same bytes; returns its dataset-relative path. Bytes that are not an image
    are refused (BadInputError) before anything is written."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            kind = im.format
    except Exception:  # PIL raises many types on data that is not an image
        raise BadInputError("not an image (unreadable header)") from None
    rel = f"images/{content_hash(data)}{IMAGE_SUFFIXES.get(kind or '', '')}"
    if not (dataset / rel).exists():
        atomic_write_bytes(dataset / rel, data, fsync=False)
    return rel
