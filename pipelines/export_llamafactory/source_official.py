"""The released Mini-o3-Coldstart parquet as an export source (replacing `preprocess_coldstart.py`).

Its `conversations` column is a string holding a list literal, which the released script `eval`s; here
it is read as JSON, or as a Python literal with `ast.literal_eval`, which never runs code. Images keep
their original bytes (no decode and re-encode) and are stored once per content hash, so the rollouts
of one sample share their original image file.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError, ImageError
from minio3_data.fsutil import content_hash
from minio3_data.profiles import ProtocolProfile
from minio3_data.profiles.released import PROFILE as OFFICIAL_PROTOCOL  # the released rows' own

from .media import ImageSink, sniff
from .row import PendingImage, RowResult, excluded, finish
from .stream import iter_rows, open_parquet
from .validate import Limits

REQUIRED = ("conversations", "images")
PROVENANCE = ("data_source", "sample_index", "rollout_index")
IMAGE_DIR = "images/released"


def official_files(path: Path) -> list[Path]:
    """The parquet file, or every parquet file under a folder (the HF dataset's `data/` shards), sorted."""
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files or not files[0].is_file():
        raise BadInputError(
            f"{path}: no parquet file found (give the released dataset's parquet or its folder)"
        )
    for f in files:
        names = set(open_parquet(f).schema_arrow.names)
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise BadInputError(f"{f}: missing column(s) {missing}; expected the Mini-o3-Coldstart layout")
    return files


def parse_conversations(raw: Any) -> Any:
    """The turn list from its stored string: JSON first, then a Python literal; never evaluates code."""
    if isinstance(raw, list):
        return raw
    if not isinstance(raw, str):
        raise TypeError(f"conversations is a {type(raw).__name__}, expected a string or a list")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("conversations is neither JSON nor a Python literal") from None


def _image_bytes(entry: Any) -> bytes | None:
    if isinstance(entry, (bytes, bytearray)):
        return bytes(entry)
    if isinstance(entry, dict) and isinstance(entry.get("bytes"), (bytes, bytearray)):
        return bytes(entry["bytes"])
    return None


@dataclass(frozen=True)
class RowGroup:
    """One row group of one file: what a worker reads itself, so image bytes never cross a pipe."""

    path: Path
    group: int
    first_index: int  # global index of its first row, for ids of rows without provenance


@dataclass
class OfficialSource:
    """The released rows, handed out one parquet row group at a time; they speak the released protocol."""

    files: list[Path]
    protocol: ProtocolProfile = OFFICIAL_PROTOCOL

    def count(self) -> int:
        return sum(open_parquet(f).metadata.num_rows for f in self.files)

    def chunks(self) -> Iterator[RowGroup]:
        index = 0
        for f in self.files:
            meta = open_parquet(f).metadata
            for g in range(meta.num_row_groups):
                yield RowGroup(f, g, index)
                index += meta.row_group(g).num_rows

    def chunk_name(self, chunk: RowGroup) -> str:
        return f"{chunk.path} row group {chunk.group}"

    def converter(self, root: Path | None, limits: Limits) -> OfficialConverter:
        return OfficialConverter(root, limits)


def row_id(row: dict[str, Any], index: int) -> str:
    if all(row.get(k) is not None for k in PROVENANCE):
        return "/".join(str(row[k]) for k in PROVENANCE)
    return f"row {index}"


@dataclass
class OfficialConverter:
    """Turns released rows into export rows (runs inside a worker process)."""

    root: Path | None  # export dir for image files; None embeds bytes
    limits: Limits
    batch_rows: int = 8  # rows decoded to Python objects at a time

    def __call__(self, chunk: RowGroup) -> list[RowResult]:
        sink = ImageSink(self.root)
        pf = open_parquet(chunk.path)
        cols = [c for c in (*REQUIRED, *PROVENANCE) if c in pf.schema_arrow.names]
        results: list[RowResult] = []
        for rows in iter_rows(pf, self.batch_rows, cols, row_groups=[chunk.group]):
            for row in rows:
                results.append(self.convert(row, chunk.first_index + len(results), sink))
        return results

    def convert(self, row: dict[str, Any], index: int, sink: ImageSink) -> RowResult:
        rid = row_id(row, index)
        try:
            conversations = parse_conversations(row.get("conversations"))
        except (ValueError, TypeError) as e:
            return excluded(rid, "bad conversations", str(e))
        pending: list[PendingImage] = []
        for k, entry in enumerate(row.get("images") or []):
            data = _image_bytes(entry)
            if data is None:
                return excluded(rid, "bad image", f"image {k} has no embedded bytes")
            try:
                ext, w, h = sniff(data, f"row {rid} image {k}")
            except ImageError as e:
                return excluded(rid, "bad image", str(e))
            rel = f"{IMAGE_DIR}/{content_hash(data)}.{ext}"
            pending.append(PendingImage(rel, w, h, lambda data=data: data))
        return finish(rid, conversations, pending, sink, self.limits)
