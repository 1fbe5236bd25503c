"""verl's v1 trainers with minio3's step metrics (`step_metrics.py`) logged at every training step.

verl 0.9.1's v1 trainers reduce the agent loop's extra fields to metrics only at validation (every
`trainer.test_freq` steps); the over-turn rate is the number a masked-GRPO run is watched by, so it must be
there at every step. Each trainer here is verl's own, registered under `minio3_<verl mode>`
(`trainer.v1.trainer_mode`), and adds one read after verl's own metrics: the step batch's `data_source` and
`extra_fields` from the TransferQueue, the same store verl's `_compute_metrics` reads.

verl also reads the mode's name as behaviour (`trainer_mode == "sync"` picks the replay buffer, prompt
submission and checkpoint paths; `trainer.v1.<mode>` holds its settings), so each trainer puts its verl mode
back into the config before verl's constructor reads it: `minio3_sync` runs exactly as `sync` does, and the
logged config says `sync`.

The metrics cover the trajectories the step trains on: with `algorithm.filter_groups` on (the released
rejection sampling), groups whose rewards are all equal were dropped before the step (verl counts them under
`train/filter_groups/...`); only `minio3/acc/generated` counts them too, from the accuracy each dropped group
shared. Padding rows (added to make the batch divisible) are left out.
"""

from __future__ import annotations

from typing import Any, ClassVar

import transfer_queue as tq
from omegaconf import DictConfig
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1 import PPOTrainerColocateAsync, PPOTrainerSeparateAsync, PPOTrainerSync, register_trainer
from verl.trainer.ppo.v1.replay_buffer import DAPO_FILTERED_REWARD_COUNTS_KEY

from .step_metrics import Trajectory, step_metrics

TRAINER = "minio3_sync"  # the launcher's trainer.v1.trainer_mode
FIELDS = ["data_source", "extra_fields"]
ACCURACY_FILTERS = ("reward", "acc")  # filter_groups.metric values whose shared group value is the accuracy


def batch_trajectories(batch: KVBatchMeta) -> list[Trajectory]:
    """The step batch's trajectories (padding rows left out), read from the TransferQueue."""
    keep = [not tag.get("is_padding", False) for tag in batch.tags]
    keys = [key for key, kept in zip(batch.keys, keep, strict=True) if kept]
    if not keys:
        return []
    data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=FIELDS)
    sources = data.pop("data_source").tolist()
    fields = data.pop("extra_fields").tolist()
    return [
        Trajectory(str(source), extra if isinstance(extra, dict) else {})
        for source, extra in zip(sources, fields, strict=True)
    ]


class StepMetrics:
    """Mixed in before a verl v1 trainer: its metrics, then ours."""

    verl_mode: ClassVar[str]  # the name verl registers the trainer this one extends under

    def __init__(self, config: DictConfig) -> None:
        config.trainer.v1.trainer_mode = self.verl_mode
        super().__init__(config)  # type: ignore[call-arg]

    def _compute_metrics(
        self, batch: KVBatchMeta, metrics: dict[str, Any], timing_raw: dict[str, Any], global_steps: int, epoch: int
    ) -> None:
        super()._compute_metrics(batch, metrics, timing_raw, global_steps, epoch)  # type: ignore[misc]
        config: DictConfig = self.config  # type: ignore[attr-defined]
        # verl's replay buffer leaves {shared filter value: groups} of the groups it dropped; with the filter on
        # the reward (or acc), that value is the whole group's accuracy
        dropped = metrics.get(DAPO_FILTERED_REWARD_COUNTS_KEY) or {}
        if str(config.algorithm.filter_groups.get("metric")) not in ACCURACY_FILTERS:
            dropped = {}
        metrics.update(step_metrics(batch_trajectories(batch), dropped, int(config.actor_rollout_ref.rollout.n)))


@register_trainer(TRAINER)
class ZoomTrainerSync(StepMetrics, PPOTrainerSync):
    """verl's `sync` trainer (rollout and training colocated, one policy version per step)."""

    verl_mode = "sync"


@register_trainer("minio3_colocate_async")
class ZoomTrainerColocateAsync(StepMetrics, PPOTrainerColocateAsync):
    """verl's `colocate_async` trainer."""

    verl_mode = "colocate_async"


@register_trainer("minio3_separate_async")
class ZoomTrainerSeparateAsync(StepMetrics, PPOTrainerSeparateAsync):
    """verl's `separate_async` trainer (rollout on its own GPUs)."""

    verl_mode = "separate_async"


TRAINERS = (TRAINER, "minio3_colocate_async", "minio3_separate_async")

__all__ = ["TRAINER", "TRAINERS", "StepMetrics", "batch_trajectories"]
