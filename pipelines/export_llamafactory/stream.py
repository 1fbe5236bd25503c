"""Read a parquet file a few rows at a time, holding about one row group in memory.

pyarrow's defaults pre-buffer every requested row group (the whole 4 GB released dataset at once);
reading unbuffered through a small stream buffer keeps memory near one row group and is faster too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from minio3_data.errors import BadInputError

STREAM_BUFFER_BYTES = 1 << 20


def open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=STREAM_BUFFER_BYTES)
    except Exception as e:  # pyarrow raises several types for non-parquet files
        raise BadInputError(f"{path}: not a readable parquet file ({e.__class__.__name__})") from None


def iter_rows(
    pf: pq.ParquetFile, rows: int, columns: list[str] | None = None, row_groups: list[int] | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Chunks of at most `rows` rows as Python dicts, in file order (of `row_groups` only, if given)."""
    for batch in pf.iter_batches(batch_size=rows, row_groups=row_groups, columns=columns, use_threads=False):
        yield batch.to_pylist()
