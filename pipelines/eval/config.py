"""What an evaluation is: one sampling run (synthesis without the keep-filter) and the turn budgets it is
scored at.

The run is a `SynthConfig` with what evaluating a policy requires: no exemplars in context (the model under
test sees exactly the question, as it was trained), k samples per question, no target to stop at, and a turn
cap and an image cap equal to the largest budget. One pass at that budget serves every smaller one
(budgets.py says why that is exact), so the budgets are not part of the run's identity: rescoring a run
at other budgets up to its largest never samples again, and a larger largest budget plays on only the
trajectories still running at the old one.

The generation limits default to the protocol profile's release values (`ProtocolProfile.limits`: for Mini-o3,
8,192 new tokens per turn, a 32,768-token context, 2,000 tokens of room to start a turn), so an eval of a
released checkpoint is the release's evaluation unless an option says otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError
from minio3_data.profiles import DEFAULT
from pipelines.sampling.config import SynthConfig

DEFAULT_BUDGETS: tuple[int, ...] = (4, 8, 12, 16, 24, 32)  # the paper's turn-scaling plot
DEFAULT_K = 32  # Avg@32, the paper's metric
RESAMPLES = 2000  # bootstrap resamples of the questions for each 95% interval
BUDGET_HELP = (
    "turn budgets as whole numbers of assistant turns, at least 1, separated by commas, e.g. 4,8,12,16,24,32"
)


@dataclass
class EvalConfig:
    run: SynthConfig  # the sampling run; its max_turns is the largest budget
    budgets: list[int]  # ascending, distinct
    resamples: int = RESAMPLES

    @property
    def k(self) -> int:
        return self.run.samples_per_item


def parse_budgets(text: str) -> list[int]:
    """`--max-turns 4,8,12` -> [4, 8, 12]; anything else is a one-line error."""
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise BadInputError(f"--max-turns {text!r}: use {BUDGET_HELP}") from None
    return check_budgets(values, text)


def check_budgets(values: Iterable[int], given: str | None = None) -> list[int]:
    """The budgets sorted and without repeats; an empty list or a budget under one turn is refused."""
    values = list(values)
    shown = given if given is not None else ",".join(map(str, values))
    bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v < 1]
    if not values or bad:
        raise BadInputError(f"--max-turns {shown!r}: use {BUDGET_HELP}")
    return sorted(set(values))


def eval_config(
    dataset: str | Path,
    out: str | Path,
    *,
    budgets: Iterable[int] = DEFAULT_BUDGETS,
    k: int = DEFAULT_K,
    split: str = "test",
    **run_options: Any,
) -> EvalConfig:
    """An evaluation of `split` of `dataset` into run dir `out`, checked before anything starts.

    `run_options` are SynthConfig fields (teacher, client, protocol, judge, temperature, concurrency, ablate,
    ...); the ones an evaluation fixes (exemplars in context, samples per item, turn and image caps, target)
    are not among them. max_tokens, context_tokens and context_reserve left out (or None) are the protocol
    profile's release values."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise BadInputError(f"--k {k}: must be a whole number of samples per question, at least 1")
    chosen = check_budgets(budgets)
    top = chosen[-1]
    limits = run_options.get("protocol", DEFAULT).limits
    released = {"max_tokens": limits.turn_tokens, "context_tokens": limits.context_tokens,
                "context_reserve": limits.context_reserve}  # fmt: skip
    for name, value in released.items():
        if run_options.get(name) is None:
            run_options[name] = value
    run = SynthConfig(
        dataset=Path(dataset), out=Path(out), split=split, samples_per_item=k, max_turns=top, max_images=top,
        exemplars_in_context=0, target=None, **run_options,
    )  # fmt: skip
    run.validate()
    return EvalConfig(run, chosen)


__all__ = ["DEFAULT_BUDGETS", "DEFAULT_K", "EvalConfig", "check_budgets", "eval_config", "parse_budgets"]
