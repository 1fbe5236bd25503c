"""Export to LLaMA-Factory: ShareGPT rows (JSON + image files, or parquet with embedded images) plus the
`dataset_info.json`, SFT YAML and DeepSpeed configs to train on them.

Sources: a synth-coldstart run dir (`export_run`) or the released Mini-o3-Coldstart parquet
(`export_official`). Every row is validated before it is written, so LLaMA-Factory never silently drops,
truncates or crashes on one; excluded rows are listed in `excluded.jsonl`, the rule they broke as the reason.
The export dir is built in a temp sibling and renamed into place, so a killed export leaves nothing half-done;
it is locked while written and may never be, contain or sit inside an input (minio3_data.outputs).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from minio3_data.errors import BadInputError
from minio3_data.exclusions import (
    EXCLUDED_NAME,
    Exclusion,
    exclusion_line,
    exclusion_summary,
    reasons_text,
    write_exclusions,
)
from minio3_data import families
from minio3_data.families import DEFAULT_FAMILY, ModelFamily
from minio3_data.export_dir import SUMMARY_NAME
from minio3_data.fsutil import atomic_dir
from minio3_data.outputs import Inputs
from minio3_data.profiles import ProtocolProfile

from ..parallel import default_workers, ordered_map
from .config import config_files
from .row import RowResult
from .source_official import OFFICIAL_PROTOCOL, OfficialSource, official_files
from .source_run import KeptRunSource, run_family
from .validate import Limits
from .writers import open_writer

FORMATS = ("json", "parquet")


class Source(Protocol):
    """Rows in picklable chunks (rows, or where a worker finds them), and the converter a worker applies."""

    protocol: ProtocolProfile  # the protocol profile its rows speak

    def count(self) -> int: ...
    def chunks(self) -> Iterator[Any]: ...
    def chunk_name(self, chunk: Any) -> str: ...  # what a dead worker's error names
    def converter(self, root: Path | None, limits: Limits) -> Callable[[Any], list[RowResult]]: ...


@dataclass
class ExportSummary:
    """What an export wrote and what it left out, and why."""

    out: str
    source: str
    format: str
    protocol: str  # the protocol profile the rows speak (system prompt, observation and error turns, pixels)
    model_family: str = DEFAULT_FAMILY  # the model family the YAMLs and the length check are for
    rows_read: int = 0
    rows_written: int = 0
    excluded: list[Exclusion] = field(default_factory=list)  # as listed in excluded.jsonl
    images: int = 0  # image files written (json) or images embedded (parquet)
    max_tokens: int = 0  # longest row written, estimated
    seconds: float = 0.0

    def text(self) -> str:
        lines = [
            (
                f"exported {self.rows_written} of {self.rows_read} rows to {self.out} "
                f"({self.format}, {self.protocol} protocol, {self.model_family}, {self.images} images, longest row ~{self.max_tokens} tokens, "
                f"{self.seconds:.1f}s)"
            )
        ]
        excluded = self.exclusion_line()
        return "\n".join([*lines, excluded] if excluded else lines)

    def exclusion_line(self) -> str | None:
        return exclusion_line(self.excluded, Path(self.out) / EXCLUDED_NAME)

    def record(self) -> dict[str, Any]:
        """export.json: this summary, the exclusions counted by reason (excluded.jsonl lists them)."""
        return {**asdict(self), "excluded": exclusion_summary(self.excluded)}


def _check_options(fmt: str, limits: Limits) -> None:
    if fmt not in FORMATS:
        raise BadInputError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if limits.cutoff_len < 1:
        raise BadInputError(f"--cutoff-len {limits.cutoff_len}: must be a positive number of tokens")
    if not 0 < limits.image_min_pixels <= limits.image_max_pixels:
        raise BadInputError(
            f"--image-min-pixels {limits.image_min_pixels} / --image-max-pixels {limits.image_max_pixels}: "
            "need 0 < min <= max"
        )


def _count_files(root: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(root))


def export_llamafactory(
    source: Source,
    out: str | os.PathLike,
    *,
    source_name: str,
    fmt: str = "json",
    cutoff_len: int = 32768,
    image_max_pixels: int = 2_000_000,
    image_min_pixels: int = 40_000,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    inputs: Inputs = (),
    family: ModelFamily = families.DEFAULT,
) -> ExportSummary:
    """Validate and write every row of `source` to `out`, for a model of `family`; the export dir appears only
    when complete.

    `inputs` are the paths the source reads, which `out` must stay clear of."""
    limits = Limits(cutoff_len, image_max_pixels, image_min_pixels, family)
    _check_options(fmt, limits)
    started = time.monotonic()
    final = Path(out).resolve()
    summary = ExportSummary(str(final), source_name, fmt, source.protocol.name, family.name)
    with atomic_dir(final, overwrite, inputs) as tmp:
        writer, data_file = open_writer(tmp, fmt)
        convert = source.converter(tmp if fmt == "json" else None, limits)
        with closing(writer):
            bar = tqdm(total=source.count(), unit="row", desc="export", disable=not progress)
            with bar:
                # forked workers: an export of a few seconds would otherwise spend one re-importing
                chunks = ordered_map(convert, source.chunks(), workers or default_workers(), start_method=None,
                                     name=source.chunk_name)  # fmt: skip
                for results in chunks:
                    for r in results:
                        _record(r, summary, writer)
                    bar.update(len(results))
        write_exclusions(tmp, summary.excluded)
        if summary.rows_written == 0:
            raise BadInputError(
                f"{source_name}: no row to export ({reasons_text(summary.excluded) or 'the source is empty'})"
            )
        if fmt == "json":
            summary.images = _count_files(tmp / "images")
        for name, text in config_files(
            final, data_file, cutoff_len, image_max_pixels, image_min_pixels, family
        ).items():
            (tmp / name).write_text(text, encoding="utf-8")
        summary.seconds = time.monotonic() - started
        (tmp / SUMMARY_NAME).write_text(json.dumps(summary.record(), indent=2) + "\n", encoding="utf-8")
    return summary


def _record(r: RowResult, summary: ExportSummary, writer: Any) -> None:
    summary.rows_read += 1
    if r.row is None:
        assert r.exclusion is not None
        summary.excluded.append(r.exclusion)
        return
    writer.write(r.row)
    summary.rows_written += 1
    summary.max_tokens = max(summary.max_tokens, r.tokens)
    summary.images += len(r.row["images"])  # embedded images; a JSON export counts unique files instead


def export_run(
    run_dir: str | os.PathLike, out: str | os.PathLike, *, protocol: ProtocolProfile | None = None,
    family: ModelFamily | None = None, **options: Any,
) -> ExportSummary:  # fmt: skip
    """Export a synth-coldstart run dir (its kept, correct trajectories) in `protocol` for `family` (default:
    the ones the run was made for); options as export_llamafactory."""
    run = Path(run_dir)
    source = KeptRunSource(run, protocol)
    return export_llamafactory(source, out, source_name=str(run), inputs=[("--run", run)],
                               family=family or run_family(run), **options)  # fmt: skip


def export_official(
    path: str | os.PathLike, out: str | os.PathLike, *, protocol: ProtocolProfile | None = None,
    family: ModelFamily | None = None, **options: Any,
) -> ExportSummary:  # fmt: skip
    """Export the released Mini-o3-Coldstart parquet (a file, or the folder of its shards) for `family` (default:
    Qwen2.5-VL, the released model's); its rows speak the released protocol, so another `protocol` is refused."""
    src = Path(path)
    if protocol is not None and protocol != OFFICIAL_PROTOCOL:
        raise BadInputError(f"--official rows speak the {OFFICIAL_PROTOCOL.name} protocol; drop --protocol")
    return export_llamafactory(
        OfficialSource(official_files(src)), out, source_name=str(src), inputs=[("--official", src)],
        family=family or families.DEFAULT, **options,
    )  # fmt: skip
