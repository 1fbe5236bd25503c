"""A compare dir as a site: the comparison table and turn-scaling plot `minio3 compare` wrote, over one index
row per compared eval (what it is, how many questions it has); the rows have no pages of their own: each
eval's trajectories are its own site (`minio3 view EVAL_DIR`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError
from pipelines.compare.report import PLOT, RECORD, TABLE

from .entries import Entry, PageResult, Renderer
from .filters import Field
from .markup import esc
from .report_html import report_html
from .site import SiteImages

COMPARE_FIELDS = (
    Field("id", "eval", choices=False),
    Field("role", "role"),
    Field("model", "model"),
    Field("protocol", "protocol"),
    Field("k", "k", numeric=True, choices=False),
    Field("questions", "questions", numeric=True, choices=False),
    Field("dir", "dir", choices=False),
)


def no_pages(entries: list[Entry]) -> list[PageResult]:
    """The evals are index rows only."""
    return [PageResult(e.id) for e in entries]


def _evals(path: Path) -> list[dict[str, Any]]:
    where = path / RECORD
    try:
        evals = json.loads(where.read_text(encoding="utf-8"))["evals"]
        if not isinstance(evals, list) or not all(isinstance(e, dict) and "label" in e for e in evals):
            raise TypeError
        return evals
    except (OSError, ValueError, TypeError, KeyError):
        raise BadInputError(
            f"{where}: unreadable or without its evals; rerun minio3 compare to rewrite it"
        ) from None


class CompareSource:
    """A compare dir: its table and plot, and its evals as index rows."""

    kind = "compare"
    fields = COMPARE_FIELDS

    def __init__(self, path: Path) -> None:
        self.path = path
        self.notes: list[str] = []
        self.evals = _evals(path)

    def entries(self) -> Iterator[Entry]:
        for i, e in enumerate(self.evals):
            values = {f.name: e.get(f.name) for f in COMPARE_FIELDS}
            values.update(id=str(e["label"]), role="baseline" if i == 0 else "compared")
            yield Entry(str(e["label"]), values, None)

    def renderer(self, site: Path) -> Renderer:
        return no_pages

    def header(self, images: SiteImages) -> str:
        report = report_html(images, self.path / TABLE, self.path / PLOT, "compare")
        return f"<p>comparison: {esc(self.path / RECORD)}</p>{report}<h2>The evals</h2>"


__all__ = ["CompareSource"]
