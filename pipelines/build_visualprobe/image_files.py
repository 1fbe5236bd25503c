"""Source images for the coco and official sources: validated in workers, copied into the dataset dir.

A missing, corrupt, oversized (decompression bomb) or unsafe (absolute, escaping) image becomes a
reason string, so the caller skips it and lists it in the manifest instead of failing the whole build.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.fsutil import safe_relpath
from minio3_data.images import image_size, open_image

VALIDATE_PIXELS = 250_000  # decode at reduced scale: enough to catch truncated or corrupt files


def check_image(task: tuple[str, str]) -> tuple[int, int] | str:
    """(root, relative path) -> the image's (width, height), or why it cannot be used."""
    root, rel = task
    try:
        path = safe_relpath(root, rel, "image path")
        size = image_size(path)
        open_image(path, draft_pixels=VALIDATE_PIXELS)
    except BadInputError as e:  # ImageError is one: missing, corrupt, bomb; safe_relpath: unsafe path
        return str(e)
    return size


def copy_image(root: Path, rel: str, dataset: Path) -> str:
    """Copy a checked image to dataset/images/<rel>; returns its dataset-relative path."""
    dest_rel = f"images/{Path(rel).as_posix()}"
    dest = dataset / dest_rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(safe_relpath(root, rel, "image path"), dest)
    return dest_rel
