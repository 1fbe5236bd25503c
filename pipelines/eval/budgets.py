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


def outcome_at(t: Trajectory, budget: int) -> Outcome:
    """What the budget-`budget` run that `t`'s first turns are a sample of would have scored."""
    if t.num_turns <= budget:
        return Outcome(t.correct, t.status in OUT_OF_TURNS, t.num_turns)
    return Outcome(False, True, budget)


__all__ = ["OUT_OF_TURNS", "Outcome", "outcome_at"]
