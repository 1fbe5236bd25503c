"""What shows whether masked GRPO works, for one training step's batch: the over-turn rate (and which limit
stopped the trajectory), assistant turns, zooms, answers, and accuracy per data source.

Read from what the `minio3_zoom` agent loop and the minio3 reward record for each trajectory
(`AgentLoopOutput.extra_fields`: the loop's fields, and the reward's `reward_extra_info`), so nothing here is
recomputed from tokens. Every metric is a mean over the batch's trajectories under `minio3/`; over-turn
reasons are always present (0.0 when none occurred), so their curves never have gaps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from .agent_loop import StopReason

PREFIX = "minio3"
OVERTURN_REASONS: tuple[str, ...] = get_args(StopReason)
REWARD_INFO = "reward_extra_info"  # where verl's agent loop puts the reward function's returned dict


@dataclass(frozen=True)
class Rollout:
    """One rollout, as the trainer finds it in the step batch."""

    data_source: str  # "<source>/<difficulty>" (train/rl/data.py)
    fields: Mapping[str, Any]  # AgentLoopOutput.extra_fields

    @property
    def acc(self) -> float | None:
        info = self.fields.get(REWARD_INFO)
        value = info.get("acc") if isinstance(info, Mapping) else None
        return None if value is None else float(value)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def step_metrics(
    trajectories: Sequence[Rollout], dropped_groups: Mapping[float, int] | None = None, group_size: int = 0
) -> dict[str, float]:
    """`minio3/...` metrics of one step batch; {} when it holds no trajectory the minio3_zoom loop made (e.g. a
    run with another agent loop), so a trainer with these metrics never fails a run for them.

    `dropped_groups` ({accuracy shared by the whole group: number of groups}) are the groups of `group_size`
    trajectories the group filter dropped before the step: `minio3/acc/generated` counts them too, the
    accuracy of every trajectory generated for the step, where `minio3/acc/mean` is that of the trained ones.
    """
    ours = [t for t in trajectories if "overturn" in t.fields]
    if not ours:
        return {}
    overturn = [float(bool(t.fields["overturn"])) for t in ours]
    turns = [float(t.fields.get("assistant_turns", 0)) for t in ours]
    metrics = {
        f"{PREFIX}/overturn/rate": _mean(overturn),
        **{
            f"{PREFIX}/overturn/{reason}": _mean([float(t.fields.get("overturn_reason") == reason) for t in ours])
            for reason in OVERTURN_REASONS
        },
        f"{PREFIX}/turns/mean": _mean(turns),
        f"{PREFIX}/turns/max": max(turns),
        f"{PREFIX}/zooms/mean": _mean([float(t.fields.get("zooms", 0)) for t in ours]),
        f"{PREFIX}/zooms/rate": _mean([float(t.fields.get("zooms", 0) > 0) for t in ours]),
        f"{PREFIX}/zoom_errors/mean": _mean([float(t.fields.get("zoom_errors", 0)) for t in ours]),
        f"{PREFIX}/answered/rate": _mean(
            [float(not t.fields["overturn"] and t.fields.get("answer") is not None) for t in ours]
        ),
    }
    by_source: dict[str, list[Rollout]] = defaultdict(list)
    for t in ours:
        by_source[t.data_source].append(t)
    scored = [acc for t in ours if (acc := t.acc) is not None]
    if scored:
        metrics[f"{PREFIX}/acc/mean"] = _mean(scored)
        dropped = dropped_groups or {}
        right = sum(scored) + sum(float(acc) * groups * group_size for acc, groups in dropped.items())
        metrics[f"{PREFIX}/acc/generated"] = right / (len(scored) + sum(dropped.values()) * group_size)
    for source, group in sorted(by_source.items()):
        metrics[f"{PREFIX}/overturn/rate/{source}"] = _mean([float(bool(t.fields["overturn"])) for t in group])
        accs = [acc for t in group if (acc := t.acc) is not None]
        if accs:
            metrics[f"{PREFIX}/acc/{source}"] = _mean(accs)
    return metrics


__all__ = ["OVERTURN_REASONS", "PREFIX", "Rollout", "step_metrics"]
