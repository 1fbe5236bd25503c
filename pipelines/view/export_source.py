"""An export dir (export-llamafactory) as site entries: each row as LLaMA-Factory will train on it.

The pictures are the export's own image files (or embedded bytes), byte for byte: what the student learns
from. The zooms are read back from the assistant turns with the export's protocol and stepped through a
ZoomEnv on the row's first image, to draw them numbered by turn and over the image each one zoomed into;
the rows the export left out are counted by reason in the header from its excluded.jsonl.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError
from minio3_data.export_dir import SUMMARY_NAME
from minio3_data.fsutil import content_hash, file_hash, safe_relpath
from minio3_data.images import OriginalCache
from minio3_data.profiles import ProtocolProfile
from minio3_data.protocol import IMAGE_PLACEHOLDER, Answer, Zoom
from minio3_data.zoom import Observation, ZoomEnv
from pipelines.export_llamafactory.source_run import WORKER_CACHE_BYTES
from pipelines.export_llamafactory.stream import open_parquet
from pipelines.export_llamafactory.writers import JSON_NAME, PARQUET_NAME

from .entries import Entry, PageResult, Renderer, render_or_missing, summary_json
from .excluded import excluded_fact
from .filters import Field
from .markup import PageMessage, Picture, chip, conversation_html, document, esc, facts, picture_html
from .search import SearchPictures, Step, into
from .site import INDEX, SiteImages, from_page, page_rel, write_page

ROLES = {"system": "system", "human": "user", "gpt": "assistant"}
EXPORT_FIELDS = (
    Field("id", "id", choices=False),
    Field("turns", "assistant turns", numeric=True),
    Field("zooms", "zooms", numeric=True),
    Field("images", "images", numeric=True),
)


def _values(row: dict[str, Any]) -> dict[str, Any]:
    said = [m.get("value", "") for m in row.get("conversations") or [] if m.get("from") == "gpt"]
    return {
        "id": str(row.get("id")),
        "turns": len(said),
        "zooms": sum("<grounding>" in s for s in said),
        "images": len(row.get("images") or []),
    }


def _json_row(line: bytes) -> dict[str, Any]:
    row = json.loads(line.strip().rstrip(b","))
    if not isinstance(row, dict):
        raise TypeError("not a row")
    return row


def _json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset, row) for each row of an export's JSON array, which export-llamafactory writes one row a line,
    so rows are read one at a time and found again by offset; a file laid out otherwise is a one-line error."""
    with open(path, "rb") as f:
        offset = 0
        for number, line in enumerate(f, 1):
            start, offset = offset, offset + len(line)
            if line.strip() in (b"[", b"]", b""):
                continue
            try:
                yield start, _json_row(line)
            except (ValueError, TypeError, RecursionError):
                raise BadInputError(
                    f"{path}:{number}: not one row of the JSON array as export-llamafactory writes it "
                    "(one row a line); re-export, or view the run it came from"
                ) from None


def _suffix(name: str) -> str:
    return Path(name).suffix.lower() or ".jpg"


def _question(row: dict[str, Any]) -> str:
    """The question a row answers, from its id (`item#sample` for rows exported from a run)."""
    return str(row.get("id")).split("#")[0]


@dataclass
class RowRenderer:
    export_dir: Path
    data_file: Path
    protocol: ProtocolProfile
    site: Path
    cache: OriginalCache | None = field(default=None, repr=False)
    _group: tuple[int, list[dict[str, Any]]] | None = field(default=None, repr=False)

    def __call__(self, entries: list[Entry]) -> list[PageResult]:
        if self.cache is None:
            self.cache = OriginalCache(WORKER_CACHE_BYTES)
        images = SiteImages(self.site)
        return [
            render_or_missing(e.id, lambda e=e: self.render(e.id, self._row(e.locator), images))
            for e in entries
        ]

    def _row(self, locator: Any) -> dict[str, Any]:
        """A row read back: from its line of the JSON array, or a parquet row group at a time."""
        if isinstance(locator, int):
            with open(self.data_file, "rb") as f:
                f.seek(locator)
                return _json_row(f.readline())
        group, offset = locator
        if self._group is None or self._group[0] != group:
            self._group = (group, open_parquet(self.data_file).read_row_group(group).to_pylist())
        return self._group[1][offset]

    def _image(self, images: SiteImages, entry: Any, row_id: str) -> tuple[str, Path]:
        """Copy one exported image into the site as is: its site path, and a file holding its bytes (the
        export's own file, whose hash is remembered, or the site's copy of embedded bytes). A file is named by
        file_hash, the same digest content_hash gives its bytes, so an image many rows share is read and
        hashed once per worker, and copied only while the site lacks it."""
        if isinstance(entry, dict):
            data = entry.get("bytes")
            if not isinstance(data, bytes):
                raise BadInputError(f"row {row_id}: an embedded image without bytes")
            suffix = _suffix(str(entry.get("path") or "image.jpg"))
            rel = images.put(f"export/{content_hash(data)}{suffix}", data)
            return rel, self.site / rel
        path = safe_relpath(self.export_dir, str(entry), f"row {row_id}: image")
        if not path.is_file():
            raise BadInputError(f"{path}: image not found")
        rel = images.put(f"export/{file_hash(path)}{_suffix(path.name)}", make=path.read_bytes)
        return rel, path

    def render(self, row_id: str, row: dict[str, Any], images: SiteImages) -> PageResult:
        files = [self._image(images, entry, row_id) for entry in row.get("images") or []]
        if not files:
            raise BadInputError(f"row {row_id}: no images")
        profile = self.protocol
        env = ZoomEnv(files[0][1], cache=self.cache, protocol=profile)
        steps: list[Step] = []
        messages: list[PageMessage] = []
        number = 0
        for m in row.get("conversations") or []:
            msg = PageMessage(ROLES.get(m.get("from"), str(m.get("from"))), str(m.get("value", "")))
            if msg.role == "assistant":
                number += 1
                msg.heading = f"turn {number}"
                msg.notes = [self._step(env, profile, msg.text, number, steps)]
            messages.append(msg)
        observations = env.observations
        shown = iter(range(len(files)))
        for msg in messages:
            for _ in range(msg.text.count(IMAGE_PLACEHOLDER)):
                k = next(shown, None)
                if k is None:
                    break
                frame = into(observations[k], steps, env) if k < len(observations) else []
                msg.pictures.append(
                    Picture(from_page(files[k][0]), f"image {k} of the row, as exported", frame)
                )
        rel = page_rel(row_id)
        legend = "every zoom the row's assistant turns make, on its first image, numbered by turn"
        overview, thumb = SearchPictures(images, env, files[0][1]).overview(
            Path(rel).stem, steps, None, legend
        )
        body = (
            f'<p><a href="{from_page(INDEX)}">&larr; index</a></p><h1>{esc(row_id)}</h1>'
            + facts(
                [
                    ("protocol", esc(self.protocol.name)),
                    ("images", esc(len(files))),
                    ("file", esc(self.data_file.name)),
                ]
            )
            + picture_html(overview)
            + f"<h2>The row, as LLaMA-Factory reads it</h2>{conversation_html(messages)}"
        )
        return PageResult(
            row_id, write_page(self.site, rel, document(f"{row_id} - minio3 view", body)), thumb
        )

    @staticmethod
    def _step(env: ZoomEnv, profile: Any, text: str, number: int, steps: list[Step]) -> str:
        """Run one assistant turn's action through the environment, as the rollout would; a note on it."""
        crops = len(env.observations) - 1
        action = profile.parse_turn(text, num_observations=crops)
        if isinstance(action, Answer):
            return f"answer: <b>{esc(action.text)}</b>"
        if not isinstance(action, Zoom):
            return f'<span class="err">{esc(type(action).__name__.lower())}: {esc(action.reason)}</span>'
        result = env.step(action)
        if not isinstance(result, Observation):
            return f'<span class="err">zoom refused: {esc(result.message)}</span>'
        source = profile.source_index(action.source, crops)
        source = source if isinstance(source, int) else 0
        steps.append(Step(number, result.index, env.on_original(result.box), source))
        made = f"image {result.index}, {list(result.box)} px"
        return f"{chip(number)}: zoom into <code>{esc(action.source)}</code> &rarr; {made}"


class ExportSource:
    """An export dir (export.json + minio3_coldstart.json or .parquet) read for the site."""

    kind = "export"
    fields = EXPORT_FIELDS

    def __init__(self, path: Path) -> None:
        self.path = path
        self.summary, self.protocol = summary_json(path / SUMMARY_NAME, "an export dir")
        self.data_file = next((path / n for n in (JSON_NAME, PARQUET_NAME) if (path / n).is_file()), None)
        if self.data_file is None:
            raise BadInputError(f"{path}: neither {JSON_NAME} nor {PARQUET_NAME}; is the export complete?")
        self.notes: list[str] = []

    def entries(self) -> Iterator[Entry]:
        assert self.data_file is not None
        if self.data_file.suffix == ".json":
            for offset, row in _json_rows(self.data_file):
                yield Entry(str(row.get("id")), _values(row), offset, _question(row))
            return
        pf = open_parquet(self.data_file)
        for group in range(pf.num_row_groups):
            for offset, row in enumerate(
                pf.read_row_group(group, columns=["id", "conversations"]).to_pylist()
            ):
                yield Entry(str(row.get("id")), _values(row), (group, offset), _question(row))

    def renderer(self, site: Path) -> Renderer:
        assert self.data_file is not None
        return RowRenderer(self.path.resolve(), self.data_file.resolve(), self.protocol, site)

    def header(self, images: SiteImages) -> str:
        s = self.summary
        rows = [
            ("export", esc(self.path.resolve())),
            ("from", esc(s.get("source", "?"))),
            ("protocol", esc(self.protocol.name)),
            ("format", esc(s.get("format", "?"))),
            ("rows", esc(f"{s.get('rows_written', '?')} written of {s.get('rows_read', '?')} read")),
        ]
        excluded = excluded_fact(self.path)
        return facts([*rows, excluded] if excluded else rows)
