"""Row writers that stream: a JSON array written row by row, or parquet written row group by row group.

Both write inside the export's temp dir (fsutil.atomic_dir), so the finished file appears only when the
whole export succeeded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

JSON_NAME = "minio3_coldstart.json"
PARQUET_NAME = "minio3_coldstart.parquet"
ROW_GROUP_ROWS = 64


class RowWriter(Protocol):
    def write(self, row: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


class JsonArrayWriter:
    """`[row, row, ...]` with one row per line; LLaMA-Factory (via `datasets`) loads it as a JSON list."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "w", encoding="utf-8")  # noqa: SIM115 - held open across write() calls
        self._f.write("[")
        self._sep = "\n"

    def write(self, row: dict[str, Any]) -> None:
        self._f.write(self._sep + json.dumps(row, ensure_ascii=False))
        self._sep = ",\n"

    def close(self) -> None:
        self._f.write("\n]\n")
        self._f.close()


def parquet_schema() -> pa.Schema:
    """The Arrow schema with Hugging Face feature metadata, so `images` loads as `List(Image())`."""
    import datasets  # only the parquet format needs it; it is slow to import

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "conversations": datasets.List(
                {"from": datasets.Value("string"), "value": datasets.Value("string")}
            ),
            "images": datasets.List(datasets.Image()),
        }
    )
    return features.arrow_schema


class ParquetWriter:
    """Rows with embedded image bytes, flushed every ROW_GROUP_ROWS rows to bound memory."""

    def __init__(self, path: Path) -> None:
        self._schema = parquet_schema()
        self._w = pq.ParquetWriter(path, self._schema, compression="zstd")
        self._buf: list[dict[str, Any]] = []

    def write(self, row: dict[str, Any]) -> None:
        self._buf.append(row)
        if len(self._buf) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            self._w.write_table(pa.Table.from_pylist(self._buf, schema=self._schema))
            self._buf = []

    def close(self) -> None:
        self._flush()
        self._w.close()


def open_writer(out: Path, fmt: str) -> tuple[RowWriter, str]:
    """The writer for `fmt` ("json" or "parquet") and the file name it writes, relative to `out`."""
    if fmt == "json":
        return JsonArrayWriter(out / JSON_NAME), JSON_NAME
    return ParquetWriter(out / PARQUET_NAME), PARQUET_NAME
