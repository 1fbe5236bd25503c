"""The questions and budgets every compared eval scored, row for row, so differences are paired.

A difference between two evals is only meaningful on the same questions: evals of different question sets
are refused (naming how many differ) unless the caller asks for the questions they share; evals with no
question in common (different datasets or splits) are refused either way. Budgets are the ones every eval
scored; the others are dropped and reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from minio3_data.errors import BadInputError

from .load import EvalScores


@dataclass
class Shared:
    """A question every eval scored: its slices (as the baseline's dataset labels it) and its row."""

    key: str
    difficulty: str
    source: str
    kind: str
    row: int


@dataclass
class Aligned:
    questions: list[Shared]  # in the baseline's order
    budgets: list[int]  # ascending, scored by every eval
    scores: list[np.ndarray]  # one (questions, budgets) matrix per eval, rows as `questions`
    dropped_budgets: dict[str, list[int]] = field(default_factory=dict)  # label -> budgets only it scored
    left_out: dict[str, int] = field(default_factory=dict)  # label -> its questions not in every eval


def _datasets(evals: list[EvalScores]) -> str:
    return "; ".join(f"{e.label}: {e.record.get('dataset')} ({e.record.get('split')})" for e in evals)


def shared_questions(evals: list[EvalScores], intersection: bool) -> list[str]:
    """The questions every eval scored, in the baseline's order."""
    base = evals[0]
    common = set(base.questions).intersection(*(e.questions for e in evals[1:]))
    if not common:
        raise BadInputError(
            f"no question is in every eval, so there is nothing to pair; are they evals of one dataset? "
            f"({_datasets(evals)})"
        )
    for e in evals[1:]:
        own, theirs = set(e.questions), set(base.questions)
        extra, lacks = len(own - theirs), len(theirs - own)
        if (extra or lacks) and not intersection:
            raise BadInputError(
                f"{e.label} and the baseline {base.label} evaluated different questions ({extra} only in "
                f"{e.label}, {lacks} only in {base.label}); pass --intersection to compare the {len(common)} "
                "questions every eval has"
            )
    return [q for q in base.questions if q in common]


def _slices(evals: list[EvalScores], keys: list[str]) -> None:
    """Refuse a question that two evals put in different slices: their datasets are not the same."""
    base = evals[0]
    for e in evals[1:]:
        for q in keys:
            if e.slices[q] != base.slices[q]:
                raise BadInputError(
                    f"question {q!r} is difficulty/source/kind {'/'.join(base.slices[q])} in {base.label} but "
                    f"{'/'.join(e.slices[q])} in {e.label}; are they evals of one dataset?"
                )


def shared_budgets(evals: list[EvalScores]) -> list[int]:
    budgets = sorted(set(evals[0].budgets).intersection(*(e.budgets for e in evals[1:])))
    if not budgets:
        scored = "; ".join(f"{e.label}: {', '.join(map(str, e.budgets))}" for e in evals)
        raise BadInputError(
            f"no turn budget is scored by every eval ({scored}); rescore one with minio3 eval --max-turns"
        )
    return budgets


def align(evals: list[EvalScores], intersection: bool = False) -> Aligned:
    """The evals' scores on the questions and budgets they share, row for row."""
    keys = shared_questions(evals, intersection)
    _slices(evals, keys)
    budgets = shared_budgets(evals)
    base = evals[0].slices
    scores = []
    for e in evals:
        row = {q: i for i, q in enumerate(e.questions)}
        scores.append(e.column(budgets)[[row[q] for q in keys]])
    return Aligned(
        questions=[Shared(q, *base[q], i) for i, q in enumerate(keys)],
        budgets=budgets,
        scores=scores,
        dropped_budgets={e.label: d for e in evals if (d := [b for b in e.budgets if b not in budgets])},
        left_out={e.label: n for e in evals if (n := len(e.questions) - len(keys))},
    )


__all__ = ["Aligned", "Shared", "align"]
