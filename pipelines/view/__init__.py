"""`minio3 view`: a static site of a run, an evaluation, a dataset or an export, to look at as a person.

One page per trajectory (or dataset item, or exported row) and an index with filters. The site opens from
the file system (relative links, styles and script inline, nothing fetched), so it can be copied anywhere
or opened straight from a cluster's shared disk.

Large inputs: only index rows stay in memory; pages are rendered in worker processes in bounded, ordered
chunks (pipelines/parallel.py) with a progress bar; the index shows thumbnails. The site is built in a temp
dir and renamed into place, like every other output, so a killed build leaves nothing half-made.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from minio3_data.errors import BadInputError
from minio3_data.fsutil import atomic_dir

from ..parallel import default_workers, ordered_map, span
from .compare_source import CompareSource
from .dataset_source import DatasetSource
from .entries import Chunked, Entry, PageResult, ViewSource
from .eval_source import EvalSource
from .export_source import ExportSource
from .filters import matches, parse_filter
from .index_page import index_page
from .kinds import detect_kind
from .run_source import RunSource
from .site import INDEX, SITE_JSON, SiteImages

SOURCES: dict[str, Callable[[Path], ViewSource]] = {
    "run": RunSource, "eval": EvalSource, "dataset": DatasetSource, "export": ExportSource,
    "compare": CompareSource,
}  # fmt: skip
SHOWN_MISSING = 3  # missing entries named in the summary line; site.json and the index list them all


@dataclass
class SiteSummary:
    kind: str
    source: str
    out: str
    entries: int  # index rows (after --filter and --limit)
    pages: int
    missing: list[tuple[str, str]] = field(default_factory=list)  # (entry id, why no page)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def text(self) -> str:
        lines = [
            (
                f"{self.kind} {self.source}: {self.pages} page(s) of {self.entries} entr{_y(self.entries)} "
                f"in {self.seconds:.1f}s; open {Path(self.out) / INDEX}"
            )
        ]
        lines += self.notes
        if self.missing:
            shown = "; ".join(f"{i}: {why}" for i, why in self.missing[:SHOWN_MISSING])
            more = (
                f"; and {len(self.missing) - SHOWN_MISSING} more" if len(self.missing) > SHOWN_MISSING else ""
            )
            lines.append(
                f"no page for {len(self.missing)} (listed in the index and {SITE_JSON}): {shown}{more}"
            )
        return "\n".join(lines)

    def record(self, filter_expr: str | None, limit: int | None) -> str:
        """site.json: what the site was built from, and every entry without a page, with why."""
        record = {
            "kind": self.kind, "source": self.source, "filter": filter_expr, "limit": limit,
            "entries": self.entries, "pages": self.pages, "notes": self.notes,
            "missing": [{"id": i, "reason": why} for i, why in self.missing],
        }  # fmt: skip
        return json.dumps(record, indent=2, ensure_ascii=False) + "\n"


def _y(n: int) -> str:
    return "y" if n == 1 else "ies"


def open_source(path: str | os.PathLike) -> ViewSource:
    """The reader for whatever kind of dir `path` is; a dir of no known kind is a one-line error."""
    path = Path(path)
    return SOURCES[detect_kind(path)](path)


def _select(view: ViewSource, filter_expr: str | None, limit: int | None) -> list[Entry]:
    """The entries the filter keeps, the first `limit` of them; only their index rows stay in memory."""
    clauses = parse_filter(filter_expr, view.fields)
    selected: list[Entry] = []
    for entry in view.entries():
        if matches(entry.values, clauses):
            selected.append(entry)
            if limit is not None and len(selected) >= limit:
                break
    return selected


def _render(
    view: ViewSource, site: Path, selected: list[Entry], workers: int, progress: bool
) -> list[PageResult]:
    """Every selected entry's page, made by worker processes, in order."""
    results: list[PageResult] = []
    with tqdm(total=len(selected), unit="page", desc="view", disable=not progress) as bar:
        # forked workers, as the export: a site of seconds would otherwise spend one re-importing
        chunks = ordered_map(view.renderer(site), Chunked(selected), workers, start_method=None,
                             name=lambda chunk: span([entry.id for entry in chunk]))
        with closing(chunks):
            for done in chunks:
                results.extend(done)
                bar.update(len(done))
    return results


def build_site(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    limit: int | None = None,
    filter_expr: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> SiteSummary:
    """Write the site of `source` (a run, eval, dataset or export dir) to `out`: the entries `filter_expr`
    selects, the first `limit` of them, one page each, and the index."""
    if limit is not None and limit < 1:
        raise BadInputError(f"--limit {limit}: must be at least 1")
    started = time.monotonic()
    view = open_source(source)
    selected = _select(view, filter_expr, limit)
    where = str(Path(source).resolve())
    with atomic_dir(out, overwrite, [("SOURCE", source)]) as tmp:
        results = _render(view, tmp, selected, workers or default_workers(), progress)
        rows = list(zip(selected, results))
        index = index_page(f"minio3 view: {view.kind} {where}", view.header(SiteImages(tmp)), view.fields, rows,
                           filter_expr or "", view.notes)  # fmt: skip
        (tmp / INDEX).write_text(index, encoding="utf-8")
        summary = SiteSummary(
            view.kind, where, str(Path(out).resolve()), len(selected), sum(1 for r in results if r.page),
            [(r.id, r.missing) for r in results if r.missing], list(view.notes), time.monotonic() - started,
        )  # fmt: skip
        (tmp / SITE_JSON).write_text(summary.record(filter_expr, limit), encoding="utf-8")
    return summary
