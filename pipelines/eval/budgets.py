"""One sampling pass at the largest turn budget serves every smaller budget.

Why this is exact: nothing a model is shown depends on the budget (the system prompt, the question, the
observation and error turns are the same at every budget in both protocol profiles, and the image cap is the
largest budget, so it never binds), and the loop decides each turn from the turns before it alone. So a
budget-t run and the first t turns of a budget-T run (t <= T) are the same random process, turn for turn:

  - a trajectory that ended within t turns (an answer, a void turn, the context budget) ends the same way at
    budget t, with the same verdict;
  - one still going after t turns has no answer in its first t turns; at budget t its t-th turn is its last
    and nothing after it exists: it is over-turn (score 0), with t turns.

The one difference from t separate passes is that the budgets share their samples (the budget-t and budget-T
numbers come from the same trajectories), which makes the differences between budgets less noisy, not
biased. A prompt that mentioned the budget ("you have 8 turns") would break the argument; none does.

The same argument extends a budget: a pass at T' > T equals the pass at T with every trajectory still running
at T played on. Only those need more turns (`still_running`); the others ended by themselves and end the same
at T'.
"""

from __future__ import annotations

from dataclasses import dataclass

from minio3_data.records import Trajectory

# statuses that end a trajectory without an answer because it ran out of turns, images or context: `malformed`
# is a trajectory whose last allowed turn was an error turn, so it ran out of turns too
OUT_OF_TURNS = frozenset({"over_turn", "malformed"})


@dataclass(frozen=True)
class Outcome:
    """A finished trajectory seen at one budget."""

    correct: bool
    over_turn: bool
    turns: int
    unjudged: bool = False  # it answered, and no judge decided the answer (scored 0)


def outcome_at(t: Trajectory, budget: int) -> Outcome:
    """What the budget-`budget` run that `t`'s first turns are a sample of would have scored."""
    if t.num_turns <= budget:
        unjudged = t.status == "answered" and t.verdict.label == "unjudged"
        return Outcome(t.correct, t.status in OUT_OF_TURNS, t.num_turns, unjudged)
    return Outcome(False, True, budget)


def still_running(t: Trajectory) -> bool:
    """Whether `t` was stopped by its turn cap rather than ending by itself: its last turn was an error turn
    (`malformed`: the loop ran out of turns after it) or a zoom never executed (one on the last allowed turn).
    A trajectory the context budget ended has an executed last turn; one that answered or went void, an end."""
    if t.status == "malformed":
        return True
    last = t.turns[-1] if t.turns else None
    return (
        t.status == "over_turn" and last is not None and last.action == "zoom"
        and last.observation is None and last.error is None
    )  # fmt: skip


__all__ = ["OUT_OF_TURNS", "Outcome", "outcome_at", "still_running"]
