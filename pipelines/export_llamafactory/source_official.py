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

import pyarrow.parquet as pq

from minio3_data.errors import BadInputError, ImageError

from .media import ImageSink, content_hash, sniff
from .row import PendingImage, RowResult, excluded, finish
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
        try:
            names = set(pq.read_schema(f).names)
        except Exception as e:  # pyarrow raises several types for non-parquet files
            raise BadInputError(f"{f}: not a readable parquet file ({e.__class__.__name__})") from None
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


@dataclass
class OfficialSource:
    """Streams the released rows in chunks, with their global row index."""

    files: list[Path]
    chunk_rows: int = 8

    def count(self) -> int:
        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.files)

    def chunks(self) -> Iterator[list[dict[str, Any]]]:
        index = 0
        for f in self.files:
            pf = pq.ParquetFile(f)
            cols = [c for c in (*REQUIRED, *PROVENANCE) if c in pf.schema_arrow.names]
            for batch in pf.iter_batches(batch_size=self.chunk_rows, columns=cols):
                rows = batch.to_pylist()
                for r in rows:
                    r["_index"] = index
                    index += 1
                yield rows

    def converter(self, root: Path | None, limits: Limits) -> OfficialConverter:
        return OfficialConverter(root, limits)


def row_id(row: dict[str, Any]) -> str:
    if all(row.get(k) is not None for k in PROVENANCE):
        return "/".join(str(row[k]) for k in PROVENANCE)
    return f"row {row['_index']}"


@dataclass
class OfficialConverter:
    """Turns released rows into export rows (runs inside a worker process)."""

    root: Path | None  # export dir for image files; None embeds bytes
    limits: Limits

    def __call__(self, rows: list[dict[str, Any]]) -> list[RowResult]:
        sink = ImageSink(self.root)
        return [self.convert(r, sink) for r in rows]

    def convert(self, row: dict[str, Any], sink: ImageSink) -> RowResult:
        rid = row_id(row)
        try:
            conversations = parse_conversations(row.get("conversations"))
        except (ValueError, TypeError) as e:
            return excluded(rid, "bad_conversations", str(e))
        pending: list[PendingImage] = []
        for k, entry in enumerate(row.get("images") or []):
            data = _image_bytes(entry)
            if data is None:
                return excluded(rid, "image_error", f"image {k} has no embedded bytes")
            try:
                ext, w, h = sniff(data, f"row {rid} image {k}")
            except ImageError as e:
                return excluded(rid, "image_error", str(e))
            rel = f"{IMAGE_DIR}/{content_hash(data)}.{ext}"
            pending.append(PendingImage(rel, w, h, lambda data=data: data))
        return finish(rid, conversations, pending, sink, self.limits)
