"""minio3's own rules over a run's verl config, checked on the composed config — whether a value came from an
option, a preset or an override after `--` — each refused in one line naming its key. verl's schema cannot
know them; each would otherwise fail only on the cluster:

  - `actor_rollout_ref.rollout.n` at least 2 (GRPO compares a group's trajectories; with 1 every advantage
    is 0 and the run trains nothing), the rule `--rollout-n` follows;
  - `actor_rollout_ref.rollout.multi_turn.format` the tool parser of the protocol the data rows were rendered
    in (the `minio3_zoom` loop refuses any other parser, and a row of another protocol, at rollout);
  - `algorithm.minio3_group_size` equal to `rollout.n` (our estimator's G).
"""

from __future__ import annotations

from typing import Any

from minio3_data.errors import BadInputError

MIN_GROUP = 2
GROUP_RULE = f"GRPO compares the trajectories of a group; use at least {MIN_GROUP}"
N_KEY = "actor_rollout_ref.rollout.n"
FORMAT_KEY = "actor_rollout_ref.rollout.multi_turn.format"


def check_group_size(n: int, shown: str) -> None:
    """The group size rule; `shown` is how the value was given (an option or a config key, with the value)."""
    if n < MIN_GROUP:
        raise BadInputError(f"{shown}: {GROUP_RULE}")


def check_constraints(cfg: Any, protocol: str, tool_parser: str) -> None:
    """minio3's rules on the composed, resolved config; `tool_parser` is the parser `protocol` needs."""
    from train.rl.objective import GROUP_SIZE_KEY

    rollout = cfg.actor_rollout_ref.rollout
    check_group_size(int(rollout.n), f"{N_KEY}={rollout.n}")
    if str(rollout.multi_turn.format) != tool_parser:
        raise BadInputError(
            f"{FORMAT_KEY}={rollout.multi_turn.format}: the data rows speak protocol {protocol!r} (--protocol), "
            f"which the minio3_zoom agent loop reads with the tool parser {tool_parser!r}; drop the override, or "
            "rebuild the rows with another --protocol"
        )
    group_size = cfg.algorithm.get(GROUP_SIZE_KEY)
    if group_size != rollout.n:
        raise BadInputError(
            f"algorithm.{GROUP_SIZE_KEY}={group_size}: must equal {N_KEY} ({rollout.n}); leave it to minio3"
        )


__all__ = ["FORMAT_KEY", "GROUP_RULE", "MIN_GROUP", "check_constraints", "check_group_size"]
