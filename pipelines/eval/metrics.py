"""Avg@k per budget, for all questions and per difficulty, data source and kind, with 95% bootstrap intervals.

Avg@k (the paper's metric, and the released code's `val/test_score`): each question's score is the share of
its k samples judged correct; Avg@k is the mean of those scores over the questions. Rows that ask one
question several ways (HR-Bench's option-cycled copies share `question_group`) are one question whose score
is the share over all its rows' samples, so a question with four cycles weighs as much as one with one.

The interval resamples whole questions with replacement (the questions are the sample from a population;
the k samples are nested in them), with a fixed seed, so the same run always prints the same numbers.
Over-turn rate and mean turns are shares and means over all samples. A question scores over its finished
samples; how many it should have had, and how many failed or never ran, is counted beside (completeness.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import numpy as np

from minio3_data.records import DIFFICULTIES, ProbeItem, Trajectory

from .budgets import outcome_at

LEVEL = 0.95
CHUNK_CELLS = 4_000_000  # resampled question-scores held at once (memory bound for 30k-question benchmarks)


@dataclass
class Question:
    """One question's samples, counted at each budget (arrays indexed like the budgets)."""

    key: str
    difficulty: str
    source: str
    kind: str
    expected: int  # k samples of each of its rows
    samples: int  # finished samples: the ones scored
    failed: int
    correct: np.ndarray
    over_turn: np.ndarray
    turns: np.ndarray
    unjudged: np.ndarray  # answers within the budget that no judge decided (scored 0)

    @property
    def score(self) -> np.ndarray:
        return self.correct / self.samples

    @property
    def missing(self) -> int:
        """Samples never played (a stopped or interrupted run)."""
        return self.expected - self.samples - self.failed


@dataclass
class BudgetRow:
    budget: int
    avg_at_k: float
    ci95: tuple[float, float]
    over_turn_rate: float
    mean_turns: float
    unjudged: int  # samples whose answer within the budget no judge decided (scored 0)


@dataclass
class GroupResult:
    name: str  # "all", "difficulty=hard", "source=vstar", "kind=relative_position"
    questions: int
    samples: int
    rows: list[BudgetRow] = field(default_factory=list)


def question_key(item: ProbeItem) -> str:
    return item.question_group or item.id


def questions(
    items: Iterable[ProbeItem], attempts: Iterable[Trajectory], budgets: list[int], k: int
) -> list[Question]:
    """Every question of `items`, in dataset order, with its finished samples counted at each budget; failed
    attempts are counted, not scored (the run reports them, and rerunning retries them)."""
    by_item = {it.id: it for it in items}
    out: dict[str, Question] = {}
    for item in by_item.values():
        key = question_key(item)
        if key not in out:
            zeros = (np.zeros(len(budgets), dtype=np.int64) for _ in range(4))
            out[key] = Question(key, item.difficulty, item.source, item.kind, 0, 0, 0, *zeros)
        out[key].expected += k
    for t in attempts:
        item = by_item.get(t.item_id)
        if item is None:
            continue
        q = out[question_key(item)]
        if t.status == "failed":
            q.failed += 1
            continue
        q.samples += 1
        for i, b in enumerate(budgets):
            o = outcome_at(t, b)
            q.correct[i] += o.correct
            q.over_turn[i] += o.over_turn
            q.turns[i] += o.turns
            q.unjudged[i] += o.unjudged
    return list(out.values())


def scored(qs: Iterable[Question]) -> list[Question]:
    """The questions with at least one finished sample: the ones a table can score."""
    return [q for q in qs if q.samples]


def bootstrap_ci(scores: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """(2, budgets) percentile bounds of the mean question score, resampling questions; `scores` is
    (questions, budgets)."""
    n, width = scores.shape
    rng = np.random.default_rng(seed)
    chunk = max(1, CHUNK_CELLS // max(1, n * width))
    means = []
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, resamples - start), n))
        means.append(scores[idx].mean(axis=1))
    tail = (1 - LEVEL) / 2 * 100
    return np.percentile(np.concatenate(means), [tail, 100 - tail], axis=0)


def group_result(name: str, qs: list[Question], budgets: list[int], resamples: int, seed: int) -> GroupResult:
    scores = np.stack([q.score for q in qs])
    samples = sum(q.samples for q in qs)
    over = np.sum([q.over_turn for q in qs], axis=0) / samples
    turns = np.sum([q.turns for q in qs], axis=0) / samples
    unjudged = np.sum([q.unjudged for q in qs], axis=0)
    lo, hi = bootstrap_ci(scores, resamples, seed)
    avg = scores.mean(axis=0)
    rows = [
        BudgetRow(
            b, float(avg[i]), (float(lo[i]), float(hi[i])), float(over[i]), float(turns[i]), int(unjudged[i])
        )
        for i, b in enumerate(budgets)
    ]
    return GroupResult(name, len(qs), samples, rows)


def _ordered(values: set[str], first: tuple[str, ...] = ()) -> list[str]:
    return [v for v in first if v in values] + sorted(values - set(first))


class Sliced(Protocol):
    difficulty: str
    source: str
    kind: str


S = TypeVar("S", bound=Sliced)


def slices(qs: Sequence[S]) -> list[tuple[str, list[S]]]:
    """The groups a table shows: all questions, then each difficulty, each data source and each kind (the
    benchmark's own categories: V*'s attribute / position, HR-Bench's single / cross, ...) when the dataset has
    more than one (eval's table and compare's share them)."""
    if not qs:
        return []
    groups = [("all", list(qs))]
    for dim, first in (("difficulty", DIFFICULTIES), ("source", ()), ("kind", ())):
        values = {getattr(q, dim) for q in qs}
        if len(values) > 1:
            groups += [
                (f"{dim}={v}", [q for q in qs if getattr(q, dim) == v]) for v in _ordered(values, first)
            ]
    return groups


def group_results(qs: list[Question], budgets: list[int], resamples: int, seed: int) -> list[GroupResult]:
    """The slices of the questions with a finished sample (all, each difficulty, data source and kind)."""
    return [group_result(name, members, budgets, resamples, seed) for name, members in slices(scored(qs))]


__all__ = [
    "BudgetRow",
    "GroupResult",
    "Question",
    "bootstrap_ci",
    "group_results",
    "question_key",
    "questions",
    "scored",
    "slices",
]
