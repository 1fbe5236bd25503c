"""An eval dir as compare reads it: what was evaluated (results.json) and each question's own score at each
budget (scores.parquet), exactly as `minio3 eval` scored them; nothing is recomputed from trajectories.

scores.parquet keys a question by its question group (HR-Bench's option cycles are one question), so
resampling its rows resamples question groups.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from minio3_data.errors import BadInputError
from pipelines.eval.completeness import INCOMPLETE
from pipelines.eval.report import RESULTS, SCORES, read_results

COLUMNS = ("question", "difficulty", "source", "kind", "budget", "score")
REWRITE = "rerun minio3 eval on it to rewrite it"


@dataclass
class EvalScores:
    """One eval: its label in the table, its results.json, and a (questions, budgets) matrix of scores."""

    label: str
    path: Path
    record: dict[str, Any]
    budgets: list[int]
    questions: list[str]  # in the eval's (dataset) order
    slices: dict[str, tuple[str, str, str]]  # question -> (difficulty, source, kind)
    scores: np.ndarray

    def column(self, budgets: list[int]) -> np.ndarray:
        """The scores at `budgets` (a subset of the eval's), one column each."""
        return self.scores[:, [self.budgets.index(b) for b in budgets]]

    def interval(self) -> tuple[int, int] | None:
        """(resamples, seed) of the eval's own 95% interval, or None for an eval that records none."""
        interval = self.record.get("interval")
        if not isinstance(interval, dict):
            return None
        resamples, seed = interval.get("resamples"), interval.get("seed")
        ok = all(isinstance(v, int) and not isinstance(v, bool) for v in (resamples, seed))
        return (resamples, seed) if ok and resamples > 0 else None

    def incomplete(self) -> str | None:
        """What the eval lacks when its results.json says `complete: false` (its own banner), else None: its
        Avg@k is then over the samples it has. An eval written before evals recorded it counts as complete."""
        if self.record.get("complete") is not False:
            return None
        completeness = self.record.get("completeness")
        banner = completeness.get("banner") if isinstance(completeness, dict) else None
        return str(banner).removeprefix(INCOMPLETE) if banner else f"{RESULTS} says complete: false"


def labels(paths: list[Path]) -> list[str]:
    """Each eval's name in the table: its dir's name, or the path as given where two names are the same; an
    eval given twice is refused."""
    seen: set[Path] = set()
    for p in paths:
        if p.resolve() in seen:
            raise BadInputError(f"{p.resolve()}: given twice; name each eval dir once")
        seen.add(p.resolve())
    names = [p.name or str(p) for p in paths]
    return [name if names.count(name) == 1 else str(p) for name, p in zip(names, paths)]


def _results(path: Path) -> tuple[dict[str, Any], list[int]]:
    if not (path / RESULTS).is_file():
        raise BadInputError(f"{path}: no {RESULTS}; give eval dirs written by minio3 eval")
    return read_results(path)


def _rows(path: Path) -> dict[str, list[Any]]:
    where = path / SCORES
    try:
        rows = pq.read_table(where).to_pydict()
        rows.setdefault("kind", [""] * len(rows.get("question", [])))  # scored before evals reported kinds
        return {c: rows[c] for c in COLUMNS}
    except FileNotFoundError:
        raise BadInputError(f"{where}: missing; {REWRITE}") from None
    except (OSError, KeyError, pa.ArrowException):
        columns = ", ".join(COLUMNS)
        raise BadInputError(f"{where}: unreadable or without the columns {columns}; {REWRITE}") from None


def load_eval(path: Path, label: str) -> EvalScores:
    """The eval at `path`; a dir that is not an eval, or whose scores do not hold exactly one score in [0, 1]
    per question and budget of its results.json, is a one-line error naming the file."""
    record, budgets = _results(path)
    rows = _rows(path)
    questions = list(dict.fromkeys(rows["question"]))
    if not questions:
        raise BadInputError(f"{path / SCORES}: no question has a finished sample; {REWRITE}")
    index, col = {q: i for i, q in enumerate(questions)}, {b: j for j, b in enumerate(budgets)}
    scores = np.full((len(questions), len(budgets)), np.nan)
    slices: dict[str, tuple[str, str, str]] = {}
    for q, difficulty, source, kind, budget, score in zip(*(rows[c] for c in COLUMNS)):
        valid = budget in col and isinstance(score, float) and math.isfinite(score) and 0 <= score <= 1
        if not valid or not math.isnan(scores[index[q], col[budget]]):
            raise BadInputError(
                f"{path / SCORES}: question {q!r} at budget {budget}: not one share in [0, 1] at a budget "
                f"of {RESULTS} ({', '.join(map(str, budgets))}); {REWRITE}"
            )
        scores[index[q], col[budget]] = score
        slices.setdefault(q, (difficulty or "", source or "", kind or ""))
    if np.isnan(scores).any():
        q = questions[int(np.argwhere(np.isnan(scores))[0][0])]
        raise BadInputError(f"{path / SCORES}: question {q!r} lacks a score at some budget; {REWRITE}")
    return EvalScores(label, path, record, budgets, questions, slices, scores)


__all__ = ["EvalScores", "labels", "load_eval"]
