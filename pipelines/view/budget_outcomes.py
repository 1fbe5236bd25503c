"""What an eval trajectory scored at each of the eval's turn budgets, in words and as filter values.

An eval samples once at its largest budget and scores every smaller one from the same trajectories, so one
trajectory has one outcome per budget ("over-turn at 2-4; correct from 8"). The outcome is the eval's own
(pipelines/eval/budgets.py `outcome_at`): the page can never disagree with results.json.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter

from minio3_data.records import Trajectory
from pipelines.eval.budgets import outcome_at

OVER_TURN = "over-turn"
NOT_SCORED = "failed: not scored"  # eval leaves failed attempts out, and a rerun retries them


def outcome_word(t: Trajectory, budget: int) -> str:
    """The trajectory at `budget`: over-turn, correct, or (ended within the budget, not right) its own
    verdict when it answered, its status (void, ...) when it did not."""
    o = outcome_at(t, budget)
    if o.over_turn:
        return OVER_TURN
    if o.correct:
        return "correct"
    return t.verdict.label if t.status == "answered" else t.status


def outcome_tokens(t: Trajectory, budgets: Sequence[int]) -> list[str]:
    """One "BUDGET:OUTCOME" per budget (the `at` filter field: `at=4:over-turn,at=8:correct`)."""
    if t.status == "failed":
        return []
    return [f"{b}:{outcome_word(t, b)}" for b in budgets]


def outcome_summary(t: Trajectory, budgets: Sequence[int]) -> str:
    """The outcomes over the budgets as runs of equal ones: "over-turn at 2-4; correct from 8". Runs are
    joined by ";" so the text is one value of the filter language (which splits clauses at commas)."""
    if t.status == "failed":
        return NOT_SCORED
    words = [(b, outcome_word(t, b)) for b in budgets]
    runs = [(word, [b for b, _ in run]) for word, run in groupby(words, key=itemgetter(1))]
    if len(runs) == 1 and len(budgets) > 1:
        return f"{runs[0][0]} at every budget"
    parts = []
    for i, (word, at) in enumerate(runs):
        if len(at) == 1:
            parts.append(f"{word} at {at[0]}")
        elif i == len(runs) - 1:
            parts.append(f"{word} from {at[0]}")
        else:
            parts.append(f"{word} at {at[0]}-{at[-1]}")
    return "; ".join(parts)
