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

The same hook runs the tool-use collapse alarm (`collapse.py`) on those metrics: `minio3/alarm/tool_collapse`
at every step, a console line when it goes up, and with `minio3.collapse.on_collapse: stop` a checkpoint at
that step (verl's own `_save_checkpoint`, unless verl just saved this step) and the end of verl's training
loop after the step's metrics are logged; `fit` then raises `ToolUseCollapse`, so the run exits non-zero
with the step and the numbers in its message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import transfer_queue as tq
from omegaconf import DictConfig
from transfer_queue import KVBatchMeta
from verl.trainer.ppo.v1 import PPOTrainerColocateAsync, PPOTrainerSeparateAsync, PPOTrainerSync, register_trainer
from verl.trainer.ppo.v1.replay_buffer import DAPO_FILTERED_REWARD_COUNTS_KEY

from .collapse import Collapse, CollapseSettings, CollapseWatch
from .step_metrics import Rollout, step_metrics

TRAINER = "minio3_sync"  # the launcher's trainer.v1.trainer_mode
FIELDS = ["data_source", "extra_fields"]
ACCURACY_FILTERS = ("reward", "acc")  # filter_groups.metric values whose shared group value is the accuracy


def batch_trajectories(batch: KVBatchMeta) -> list[Rollout]:
    """The step batch's trajectories (padding rows left out), read from the TransferQueue."""
    keep = [not tag.get("is_padding", False) for tag in batch.tags]
    keys = [key for key, kept in zip(batch.keys, keep, strict=True) if kept]
    if not keys:
        return []
    data = tq.kv_batch_get(keys=keys, partition_id=batch.partition_id, select_fields=FIELDS)
    sources = data.pop("data_source").tolist()
    fields = data.pop("extra_fields").tolist()
    return [
        Rollout(str(source), extra if isinstance(extra, dict) else {})
        for source, extra in zip(sources, fields, strict=True)
    ]


class ToolUseCollapse(RuntimeError):
    """The run stopped because its policy stopped zooming (`minio3.collapse.on_collapse: stop`)."""


class StepMetrics:
    """Mixed in before a verl v1 trainer: its metrics, then ours, then the tool-use collapse alarm."""

    verl_mode: ClassVar[str]  # the name verl registers the trainer this one extends under

    def __init__(self, config: DictConfig) -> None:
        config.trainer.v1.trainer_mode = self.verl_mode
        super().__init__(config)  # type: ignore[call-arg]
        self.collapse_watch = CollapseWatch(CollapseSettings.from_config(config.get("minio3", {}).get("collapse")))
        self.collapse_watch.load(self._checkpoint_dir)
        self.collapse_stop: Collapse | None = None

    @property
    def _checkpoint_dir(self) -> Path:
        return Path(str(self.config.trainer.default_local_dir))  # type: ignore[attr-defined]

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
        ours = step_metrics(batch_trajectories(batch), dropped, int(config.actor_rollout_ref.rollout.n))
        metrics.update(ours)
        self._watch_tool_use(ours, global_steps, metrics)

    def _watch_tool_use(self, ours: dict[str, float], step: int, metrics: dict[str, Any]) -> None:
        had_baseline = self.collapse_watch.baseline is not None
        collapse = self.collapse_watch.observe(step, ours)
        metrics.update(self.collapse_watch.alarm_metric())
        if not had_baseline:
            self.collapse_watch.save(self._checkpoint_dir)
        if collapse is None:
            return
        print(collapse.line(), flush=True)
        if collapse.settings.on_collapse == "stop":
            self._stop_after(collapse)

    def _stop_after(self, collapse: Collapse) -> None:
        """Checkpoint this step and let verl's loop end once the step's metrics are logged."""
        config: DictConfig = self.config  # type: ignore[attr-defined]
        save_freq = int(config.trainer.save_freq)
        saved_by_verl = save_freq > 0 and (
            collapse.step % save_freq == 0 or collapse.step >= self.total_training_steps  # type: ignore[attr-defined]
        )
        if not saved_by_verl:
            self._save_checkpoint()  # type: ignore[attr-defined]
        self.collapse_stop = collapse
        self.total_training_steps = collapse.step  # verl's loop: logs this step, then `global_steps <= total` ends it

    def fit(self, agent_loop_manager: Any) -> None:
        super().fit(agent_loop_manager)  # type: ignore[misc]
        if self.collapse_stop is not None:
            where = self._checkpoint_dir / f"global_step_{self.collapse_stop.step}"
            raise ToolUseCollapse(
                f"{self.collapse_stop.line()}; stopped (minio3.collapse.on_collapse=stop), checkpoint {where}"
            )


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

__all__ = ["TRAINER", "TRAINERS", "StepMetrics", "ToolUseCollapse", "batch_trajectories"]
