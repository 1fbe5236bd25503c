"""What every kind of input gives the site builder: index rows, a picklable page renderer, a header.

The builder keeps only the small index rows of all entries in memory; each entry's record is found again
by the renderer from its `locator` (a line offset, a row number, a small row) inside a worker process, so
memory stays flat however many trajectories a run holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from minio3_data.errors import BadInputError
from minio3_data.profiles import DEFAULT, PROFILES, ProtocolProfile

from .filters import Field, Value
from .site import SiteImages


@dataclass
class Entry:
    """One row of the index: the values filters and columns see, and where the renderer finds its record."""

    id: str
    values: dict[str, Value]
    locator: Any
    group: str = ""  # entries on one original (a question's samples) share it: one worker renders them


@dataclass
class PageResult:
    """What rendering one entry made: its page and thumbnail (site paths), or why it has none."""

    id: str
    page: str | None = None
    thumb: str | None = None
    missing: str | None = None  # why no page could be made (an image missing or unreadable)


Renderer = Callable[[list[Entry]], list[PageResult]]


class ViewSource(Protocol):
    kind: str  # run | eval | dataset | export
    path: Path
    fields: tuple[Field, ...]
    notes: list[str]  # what reading the input found wrong but survivable (damaged lines, ...)

    def entries(self) -> Iterator[Entry]: ...
    def renderer(self, site: Path) -> Renderer: ...
    def header(self, images: SiteImages) -> str: ...


def summary_json(path: Path, what: str) -> tuple[dict[str, Any], ProtocolProfile]:
    """A dir's own summary (a dataset's manifest.json, an export's export.json) and the protocol profile it
    records (the default for files from before profiles were recorded); unreadable is a one-line error."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise BadInputError(f"{path}: unreadable; is {path.parent} {what}?") from None
    if not isinstance(summary, dict):
        raise BadInputError(f"{path}: not a JSON object; is {path.parent} {what}?")
    protocol = summary.get("protocol")
    return summary, PROFILES.get(protocol, DEFAULT) if isinstance(protocol, str) else DEFAULT


def render_or_missing(entry_id: str, make: Callable[[], PageResult]) -> PageResult:
    """A page, or, when its input is missing or unreadable (ImageError and other BadInputError: a path
    outside the dataset, a file gone), the entry listed with why, so one bad entry never stops a site."""
    try:
        return make()
    except BadInputError as e:
        return PageResult(entry_id, missing=str(e))


@dataclass
class Chunked:
    """Entries in worker tasks of about `size`, never splitting the run of entries on one original (up to
    `most`): decoding an original and making its first view cost more than a page, so the samples of one
    question are rendered by one worker, from its cache, rather than by every worker once."""

    entries: list[Entry]
    size: int = 8
    most: int = 64
    groups: list[list[Entry]] = field(init=False)

    def __post_init__(self) -> None:
        self.groups = []
        chunk: list[Entry] = []
        for entry in self.entries:
            same = bool(chunk) and entry.group != "" and entry.group == chunk[-1].group
            if chunk and ((len(chunk) >= self.size and not same) or len(chunk) >= self.most):
                self.groups.append(chunk)
                chunk = []
            chunk.append(entry)
        if chunk:
            self.groups.append(chunk)

    def __len__(self) -> int:
        return len(self.groups)

    def __iter__(self) -> Iterator[list[Entry]]:
        return iter(self.groups)
