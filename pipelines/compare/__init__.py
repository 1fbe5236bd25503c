"""`minio3 compare`: several evals of one benchmark side by side, each against the first (the baseline).

Two policies, protocols or checkpoints evaluated on the same questions differ by less than their separate
intervals suggest: the questions both find hard are the same questions. So the comparison pairs them: it
reads each eval's own per-question scores (scores.parquet, as `minio3 eval` scored them), keeps the
questions and budgets every eval has (align.py), and gives each difference a paired bootstrap interval over
the shared questions (paired.py). Outputs: compare.md, compare.json, compare.png (report.py); `minio3 view`
shows them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.fsutil import atomic_dir
from pipelines.eval.config import RESAMPLES

from .align import align
from .load import labels, load_eval
from .paired import Comparison, compare_evals
from .report import PLOT, RECORD, TABLE, difference_cell, incomplete_banner, left_out_lines, write_report


@dataclass
class CompareSummary:
    out: Path
    comparison: Comparison

    def lines(self) -> list[str]:
        """The console summary: first a banner naming any incomplete eval, then each difference on all shared
        questions by budget, what was left out, where the outputs are."""
        c = self.comparison
        everything = c.slices[0]
        lines = [
            f"{d.label} - {c.labels[0]} on {everything.questions} shared questions, Avg@k points by turn "
            "budget [95% paired interval]: "
            + ", ".join(f"{b}: {difference_cell(d, j)}" for j, b in enumerate(c.aligned.budgets))
            for d in everything.differences
        ]
        banner = [b] if (b := incomplete_banner(c)) else []
        return [*banner, *lines, *left_out_lines(c), f"{self.out}: {TABLE}, {RECORD}, {PLOT}"]


def compare(
    evals: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    intersection: bool = False,
    resamples: int | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> CompareSummary:
    """Compare each eval dir after the first with the first on the questions and budgets they share, and write
    the report to `out`; different question sets are refused unless `intersection`. `resamples` per paired
    interval: eval's own count by default."""
    resamples = RESAMPLES if resamples is None else resamples
    paths = [Path(e) for e in evals]
    if len(paths) < 2:
        raise BadInputError(
            "give at least two eval dirs: the first is the baseline, each other is compared with it"
        )
    if resamples < 1:
        raise BadInputError(f"--bootstrap {resamples}: must be at least 1 resample")
    with atomic_dir(out, overwrite, [("EVAL", p) for p in paths]) as tmp:
        loaded = [load_eval(p, label) for p, label in zip(paths, labels(paths))]
        comparison = compare_evals(loaded, align(loaded, intersection), resamples, seed)
        write_report(tmp, comparison)
    return CompareSummary(Path(out).resolve(), comparison)


__all__ = ["CompareSummary", "compare"]
