"""One exported row on its way out: drafted by a source, validated, then its images stored.

Both sources (our run dirs and the released parquet) end in `finish`, so the same rules guard every row,
and images are stored only for rows that pass (an excluded row leaves no orphan files behind).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minio3_data.exclusions import Exclusion

from .media import ImageEntry, ImageSink
from .validate import Limits, check_row

STAGE = "export-llamafactory"


@dataclass
class PendingImage:
    rel: str  # content-addressed name under the export dir
    width: int  # size of the image as stored (what LLaMA-Factory will open)
    height: int
    data: Callable[[], bytes]  # encoded bytes, produced only if the image must be written


@dataclass
class RowResult:
    id: str
    row: dict[str, Any] | None  # {"id", "conversations", "images"}; None when excluded
    exclusion: Exclusion | None = None
    tokens: int = 0


def excluded(row_id: str, reason: str, detail: str) -> RowResult:
    return RowResult(row_id, None, Exclusion(STAGE, row_id, reason, detail))


def finish(
    row_id: str, conversations: Any, images: list[PendingImage], sink: ImageSink, limits: Limits
) -> RowResult:
    """Validate a drafted row and, if it passes, store its images and return the row to write."""
    problem, tokens = check_row(conversations, [(im.width, im.height) for im in images], limits)
    if problem:
        return excluded(row_id, problem.reason, problem.detail)
    entries: list[ImageEntry] = [sink.put(im.rel, im.data) for im in images]
    return RowResult(row_id, {"id": row_id, "conversations": conversations, "images": entries}, None, tokens)
