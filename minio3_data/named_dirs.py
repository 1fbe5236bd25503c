"""The dirs a dir's records name: what a command reaches through an input without being given it.

A run's (or an evaluation's) run.json names its dataset; an export's rows (through
LLaMA-Factory's dataset_info.json) name their image files. A command that reads the dir reads those too, so
they are inputs as much as the dir itself (minio3_data.outputs). Records are read leniently here: a damaged
one names nothing, and the command's own reader reports it in one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

RUN_JSON = "run.json"  # {"identity": the options that shape the data, "dataset": its dir, "minio3": version}
DATASET_INFO = "dataset_info.json"  # LLaMA-Factory's index of an export's data files


class NamedDir(NamedTuple):
    what: str  # what the dir is to the one naming it: "dataset", "image dir"
    record: str  # the file that names it
    path: Path  # resolved


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _run_dirs(run: Path) -> Iterator[NamedDir]:
    """A run's dataset; a relative path is relative to the run dir."""
    record = _json(run / RUN_JSON)
    dataset = record.get("dataset") if isinstance(record, dict) else None
    if isinstance(dataset, str) and dataset and "\0" not in dataset:
        yield NamedDir("dataset", RUN_JSON, (run / dataset).resolve())


def _image_entries(data: Path, column: str) -> Iterator[Any]:
    """The image entries of every row of an export data file: a JSON array, or parquet
    (only a column of path strings; embedded bytes name no file)."""
    if data.suffix == ".parquet":
        try:
            pf = pq.ParquetFile(data)
            field = pf.schema_arrow.field(column)
        except (OSError, KeyError, pa.ArrowException):
            return
        if pa.types.is_list(field.type) and pa.types.is_string(field.type.value_type):
            for entries in pf.read(columns=[column]).column(column).to_pylist():
                yield from entries or []
        return
    rows = _json(data)
    for row in rows if isinstance(rows, list) else []:
        images = row.get(column) if isinstance(row, dict) else None
        yield from images if isinstance(images, list) else []


def _export_dirs(export: Path) -> Iterator[NamedDir]:
    """The dirs outside the export holding images its rows name (LLaMA-Factory reads a relative path from the
    export dir, its media_dir, and an absolute one as it is)."""
    info = _json(export / DATASET_INFO)
    seen: set[Path] = set()
    for entry in info.values() if isinstance(info, dict) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
            continue
        columns = entry.get("columns") if isinstance(entry.get("columns"), dict) else {}
        data = export / entry["file_name"]
        for image in _image_entries(data, str(columns.get("images", "images"))):
            if not isinstance(image, str) or not image or "\0" in image:
                continue
            folder = (export / image).resolve().parent
            if folder not in seen and folder != export and export not in folder.parents:
                seen.add(folder)
                yield NamedDir("image dir", data.name, folder)


def named_dirs(path: Path) -> Iterator[NamedDir]:
    """The dirs that the records of dir `path` (resolved) name; none for a file or a dir without records."""
    yield from _run_dirs(path)
    yield from _export_dirs(path)
