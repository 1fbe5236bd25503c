"""Differences between evals on the same questions, with paired bootstrap intervals.

Each compared eval B is set against the baseline A on every shared question: the difference of their
Avg@k is the mean of the per-question differences B - A, and its 95% interval resamples the shared
questions (question groups) with replacement, the same draws for both evals, which is what pairing means:
the spread between questions that both evals share cancels, only their disagreement is left. It is eval's
own percentile bootstrap (pipelines/eval/metrics.bootstrap_ci) run on the differences, seeded, so the same
inputs and seed always give the same interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.eval.metrics import bootstrap_ci, slices

from .align import Aligned
from .load import EvalScores


@dataclass
class Difference:
    """B - A at each budget: the point difference and its 95% paired interval (shares, not points)."""

    label: str  # B
    point: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@dataclass
class SliceResult:
    """One row group of the table: all questions, a difficulty or a data source."""

    name: str
    questions: int
    avg_at_k: list[np.ndarray]  # one per eval, by budget
    differences: list[Difference]  # one per eval after the baseline


def paired_difference(a: np.ndarray, b: np.ndarray, label: str, resamples: int, seed: int) -> Difference:
    """B - A over the rows of two (questions, budgets) score matrices that hold the same questions."""
    diff = b - a
    lo, hi = bootstrap_ci(diff, resamples, seed)
    return Difference(label, diff.mean(axis=0), lo, hi)


def compare_slices(aligned: Aligned, labels: list[str], resamples: int, seed: int) -> list[SliceResult]:
    """Every slice's Avg@k per eval and each eval's paired difference from the baseline."""
    out = []
    for name, members in slices(aligned.questions):
        rows = [q.row for q in members]
        scores = [s[rows] for s in aligned.scores]
        base, others = scores[0], zip(scores[1:], labels[1:])
        differences = [paired_difference(base, s, label, resamples, seed) for s, label in others]
        out.append(SliceResult(name, len(rows), [s.mean(axis=0) for s in scores], differences))
    return out


Band = tuple[np.ndarray, np.ndarray]  # an interval's lower and upper bounds, by budget


@dataclass
class Comparison:
    """Everything the report shows: the evals, what they share, every slice and each eval's own band."""

    evals: list[EvalScores]  # the baseline first
    aligned: Aligned
    slices: list[SliceResult]
    bands: list[Band | None]  # each eval's own interval of all shared questions' Avg@k
    resamples: int
    seed: int

    @property
    def labels(self) -> list[str]:
        return [e.label for e in self.evals]


def own_bands(evals: list[EvalScores], aligned: Aligned) -> list[Band | None]:
    """Each eval's own 95% interval of Avg@k over the shared questions (its recorded resamples and seed, so
    an eval compared on all its questions gets the interval its results.json has), or None when it records
    none."""
    bands: list[Band | None] = []
    for e, scores in zip(evals, aligned.scores):
        interval = e.interval()
        if interval is None:
            bands.append(None)
            continue
        lo, hi = bootstrap_ci(scores, *interval)
        bands.append((lo, hi))
    return bands


def compare_evals(evals: list[EvalScores], aligned: Aligned, resamples: int, seed: int) -> Comparison:
    slices = compare_slices(aligned, [e.label for e in evals], resamples, seed)
    return Comparison(evals, aligned, slices, own_bands(evals, aligned), resamples, seed)


__all__ = ["Comparison", "Difference", "SliceResult", "compare_evals", "paired_difference"]
