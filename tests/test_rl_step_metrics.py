"""Step metrics (over-turn rate and reason, turns, zooms, accuracy per data source) at every training step.

The end-to-end test runs one training step's data path through verl's REAL v1 code on CPU: a local Ray and
TransferQueue, verl's own prompt submission (`_submit_batch_to_rollout`), its TransferQueue agent-loop worker
(`AgentLoopWorkerTQ`, our `minio3_zoom` loop inside, scored by verl's reward worker with our reward), its sync
replay buffer, its advantage step with our registered estimator, and its `_compute_metrics` followed by ours.
Only the LLM server (scripted turns) and the processor factory stand in (tests/rl_stand_ins.py). Expected
values are counted from the scripted trajectories, not from the code under test.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import numpy as np
import pytest
from needs_verl import require_verl
from test_rl_agent_loop import IMAGE_CAP_CASE, SCRIPTS, rl, rows_for, setup  # noqa: F401 (rl, setup: fixtures)

from minio3_data.profiles import get_profile

ANSWER_FIRST = "Case answer-first: what colour is the sign?"  # 1 turn, answers B (right)
ZOOM_LAST = "Case zoom-last: what colour is the sign?"  # zooms at turns 1-3 of 3: over-turn (turns), 2 zooms run
ANSWER_LAST = "Case answer-last: what colour is the sign?"  # zoom, zoom, answers A (wrong) at the last turn
# IMAGE_CAP_CASE: zoom, then a zoom at the 2-image cap: over-turn (images) at turn 2, 1 zoom run
EASY = "synthetic/easy"  # the data source given to the first two questions; the others keep synthetic/hard
N = 2  # trajectories per question (rollout.n): each question's are identical (scripted), so each counts twice


def trajectory(source: str, **fields: Any) -> Any:
    from train.rl.step_metrics import Rollout

    return Rollout(source, fields)


# --- the metrics, from what the loop and the reward record ------------------------------------------------


def test_step_metrics_from_recorded_fields() -> None:
    require_verl()
    from train.rl.step_metrics import step_metrics

    done = {"overturn": False, "overturn_reason": "", "zoom_errors": 0}
    batch = [
        trajectory("a/easy", **done, assistant_turns=1, zooms=0, answer="B", reward_extra_info={"acc": 1.0}),
        trajectory("a/easy", **done, assistant_turns=4, zooms=2, answer="C", reward_extra_info={"acc": 0.0}),
        trajectory("b/hard", overturn=True, overturn_reason="turns", assistant_turns=6, zooms=5, zoom_errors=1,
                   answer=None, reward_extra_info={"acc": 0.0}),  # fmt: skip
        trajectory("b/hard", **done, assistant_turns=2, zooms=1, answer=None, reward_extra_info={"acc": 0.0}),
    ]
    assert step_metrics(batch) == {
        "minio3/overturn/rate": 1 / 4,
        "minio3/overturn/turns": 1 / 4,
        "minio3/overturn/images": 0.0,
        "minio3/overturn/context": 0.0,
        "minio3/turns/mean": (1 + 4 + 6 + 2) / 4,
        "minio3/turns/max": 6.0,
        "minio3/zooms/mean": (0 + 2 + 5 + 1) / 4,
        "minio3/zooms/rate": 3 / 4,  # all but the one that answered in turn 1
        "minio3/zoom_errors/mean": 1 / 4,
        "minio3/answered/rate": 2 / 4,  # the void turn (no answer) and the over-turn did not answer
        "minio3/acc/mean": 1 / 4,
        "minio3/acc/generated": 1 / 4,  # no group was dropped before the step
        "minio3/overturn/rate/a/easy": 0.0,
        "minio3/acc/a/easy": 1 / 2,
        "minio3/overturn/rate/b/hard": 1 / 2,
        "minio3/acc/b/hard": 0.0,
    }


def test_generated_accuracy_counts_the_groups_the_filter_dropped() -> None:
    """Kept: 4 trajectories, 1 right. Dropped: 2 groups of 4 all right and 1 group of 4 all wrong."""
    require_verl()
    from train.rl.step_metrics import step_metrics

    kept = [
        trajectory("a/easy", overturn=False, assistant_turns=1, answer="B", reward_extra_info={"acc": acc})
        for acc in (1.0, 0.0, 0.0, 0.0)
    ]
    metrics = step_metrics(kept, {1.0: 2, 0.0: 1}, group_size=4)
    assert metrics["minio3/acc/mean"] == 1 / 4
    assert metrics["minio3/acc/generated"] == (1 + 2 * 4) / (4 + 3 * 4)


def test_rows_another_loop_made_give_no_metrics_and_no_error() -> None:
    require_verl()
    from train.rl.step_metrics import step_metrics

    assert step_metrics([trajectory("a/easy", turns_used=3), trajectory("a/easy")]) == {}
    assert step_metrics([]) == {}
    no_reward = step_metrics([trajectory("a/easy", overturn=False, assistant_turns=1, answer="B")])
    assert "minio3/acc/mean" not in no_reward and no_reward["minio3/answered/rate"] == 1.0


# --- the trainers: verl's own, under minio3_<mode> --------------------------------------------------------


def step_config(rl: Any, setup: dict[str, Any], questions: int, overrides: list[str] | None = None, n: int = N) -> Any:
    from train.masked_grpo import DEFAULT_NORMALISATION
    from train.rl.objective import GROUP_SIZE_KEY, VERL_OBJECTIVES

    objective = VERL_OBJECTIVES[DEFAULT_NORMALISATION]
    return rl.compose_config(
        setup["model"],
        overrides=[
            f"algorithm.adv_estimator={objective.adv_estimator}",
            f"+algorithm.{GROUP_SIZE_KEY}=${{actor_rollout_ref.rollout.n}}",  # as the launcher sets it
            f"actor_rollout_ref.rollout.n={n}",
            f"data.train_batch_size={questions}",
            "trainer.n_gpus_per_node=1",
            "trainer.logger=[console]",
            *(overrides or []),
        ],
    )


def test_each_minio3_trainer_is_verls_own_mode(rl: Any, setup: dict[str, Any]) -> None:
    """verl reads the mode's name as behaviour (`== "sync"` picks the sync replay buffer, `trainer.v1.<mode>` its
    settings); each of ours must run exactly as the verl mode it extends."""
    from verl.trainer.ppo.v1 import PPOTrainerSync, get_trainer_cls

    from train.rl.plugins import REGISTERED, rollout_config
    from train.rl.trainer import TRAINER, TRAINERS, StepMetrics

    assert rollout_config(get_profile("released"), "rule")["trainer.v1.trainer_mode"] == TRAINER
    assert REGISTERED["trainer"] == TRAINERS

    def built(name: str, cls: type | None = None) -> tuple[Any, ...]:
        # separate_async asserts its own GPUs, a weight-sync backend and batch = sync steps x mini-batch
        cfg = step_config(rl, setup, questions=8, overrides=[
            "actor_rollout_ref.actor.ppo_mini_batch_size=2", "actor_rollout_ref.rollout.nnodes=1",
            "actor_rollout_ref.rollout.n_gpus_per_node=1", "actor_rollout_ref.rollout.checkpoint_engine.backend=nccl",
        ])  # fmt: skip
        cfg.trainer.v1.trainer_mode = name
        trainer = (cls or get_trainer_cls(name))(cfg)
        return trainer.trainer_mode, type(trainer.replay_buffer), trainer.parameter_sync_step

    for name in TRAINERS:
        verl_mode = name.removeprefix("minio3_")
        cls = get_trainer_cls(name)
        assert issubclass(cls, StepMetrics) and issubclass(cls, get_trainer_cls(verl_mode)), name
        assert built(name) == built(verl_mode), name
    # why ours put the mode back: verl's own sync trainer under our name would sample as an async one
    assert built(TRAINER, PPOTrainerSync)[1] is not built("sync")[1]


# --- one training step's data path, end to end --------------------------------------------------------------


@pytest.fixture(scope="module")
def transfer_queue() -> Any:
    """A local Ray with verl's TransferQueue (controller and one storage unit: one CPU each)."""
    require_verl()
    import ray
    import transfer_queue as tq
    from omegaconf import OmegaConf

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, namespace=f"minio3-{uuid.uuid4().hex[:8]}")
    try:
        tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
        yield tq
        tq.close()
    finally:
        ray.shutdown()


class InProcessRollout:
    """verl's AgentLoopManagerTQ, in this process: hands the submitted prompts to one AgentLoopWorkerTQ (the
    plain class behind the Ray actor) and waits for its fire-and-forget trajectories to land in the queue."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker

    def generate_sequences(self, batch: Any) -> None:
        async def run() -> None:
            await self.worker.generate_sequences(batch)
            while self.worker.background_tasks:
                await asyncio.gather(*list(self.worker.background_tasks))

        asyncio.run(run())


@pytest.mark.slow
def test_one_training_step_logs_minio3_metrics(
    rl: Any, setup: dict[str, Any], transfer_queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import verl.workers.config.model as model_config_module
    import verl.utils.tensordict_utils as tu
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ
    from verl.trainer.ppo.v1.replay_buffer import DAPO_FILTERED_REWARD_COUNTS_KEY
    from verl.utils.dataset.rl_dataset import collate_fn

    questions = [ANSWER_FIRST, ZOOM_LAST, ANSWER_LAST, IMAGE_CAP_CASE]
    cfg = step_config(rl, setup, questions=len(questions))
    trainer = get_trainer_cls(cfg.trainer.v1.trainer_mode)(cfg)
    trainer._init_resource_pool_mgr()

    monkeypatch.setattr(model_config_module, "hf_processor", rl.load_processor)
    server = rl.ScriptedServer(lambda q, t: SCRIPTS[q][t], list(SCRIPTS))
    worker = AgentLoopWorkerTQ.__ray_actor_class__(
        cfg, llm_client=server, reward_loop_worker_handles=[rl.LocalRewardHandle(cfg)]
    )
    server.tokenizer = worker.tokenizer
    rows = rl.dataset_rows(cfg, worker, rows_for(setup, questions, "released"))
    for row in rows:
        if row["extra_info"]["question"] in (ANSWER_FIRST, ZOOM_LAST):
            row["data_source"] = EASY
        if row["extra_info"]["question"] == IMAGE_CAP_CASE:
            row["extra_info"]["max_images"] = 2

    # verl's own step: prompts as its dataloader hands them, submitted, sampled, advantages, metrics
    batch_dict = collate_fn(rows)
    batch_dict["uid"] = np.array([str(uuid.uuid4()) for _ in rows], dtype=object)
    batch = tu.get_tensordict(batch_dict)
    tu.assign_non_tensor_data(batch, "global_steps", 1)
    trainer.global_steps = 1
    trainer.agent_loop_manager = InProcessRollout(worker)
    assert trainer._submit_batch_to_rollout(batch) == len(questions)
    step_batch, _ = trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=len(questions))
    assert len(step_batch.keys) == N * len(questions)
    # what verl's replay buffer leaves when its group filter dropped groups before this step: {reward: groups}
    metrics: dict[str, Any] = {DAPO_FILTERED_REWARD_COUNTS_KEY: {1.0: 1, 0.0: 2}}
    step_batch = trainer._compute_advantage(step_batch, metrics)
    trainer._compute_metrics(step_batch, metrics, {"step": 1.0, "gen": 0.5}, global_steps=1, epoch=0)

    # verl's own metrics are all still there, and agree with ours where both count the same thing
    assert metrics["training/global_step"] == 1
    assert metrics["critic/score/mean"] == pytest.approx(1 / 4)
    ours = {k: float(v) for k, v in metrics.items() if k.startswith("minio3/")}
    assert ours == pytest.approx({
        "minio3/overturn/rate": 2 / 4,  # zoom-last (turns) and image-cap (images)
        "minio3/overturn/turns": 1 / 4,
        "minio3/overturn/images": 1 / 4,
        "minio3/overturn/context": 0.0,
        "minio3/turns/mean": (1 + 3 + 3 + 2) / 4,
        "minio3/turns/max": 3.0,
        "minio3/zooms/mean": (0 + 2 + 2 + 1) / 4,
        "minio3/zooms/rate": 3 / 4,  # all but answer-first
        "minio3/zoom_errors/mean": 0.0,
        "minio3/answered/rate": 2 / 4,
        "minio3/acc/mean": 1 / 4,
        "minio3/acc/generated": (2 + 1 * N) / (4 * N + 3 * N),  # answer-first's two, and one dropped group
        f"minio3/overturn/rate/{EASY}": 1 / 2,
        f"minio3/acc/{EASY}": 1 / 2,
        "minio3/overturn/rate/synthetic/hard": 1 / 2,
        "minio3/acc/synthetic/hard": 0.0,
    })


def test_the_dry_run_config_names_the_minio3_trainer() -> None:
    """`minio3 train-rl` puts verl on the step-metrics trainer (checked with verl's registry by the dry run)."""
    require_verl()
    from train.rl.plugins import rollout_config
    from train.rl.registries import resolve
    from train.rl.trainer import ZoomTrainerSync

    assert resolve("trainer", rollout_config(get_profile("released"), "rule")["trainer.v1.trainer_mode"]) is ZoomTrainerSync
