"""Masked GRPO: the plain-torch reference (train/masked_grpo.py) against hand-computed values, and verl's path
(train/rl/objective.py, through verl's own advantage dispatch, registries and loss aggregation) against the
reference for each of the three normalisations, in several data-parallel / micro-batch layouts."""

from __future__ import annotations

import math
import pickle
import random
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
import torch
from needs_verl import require_verl
from test_rl_agent_loop import rl, setup  # noqa: F401 (fixtures)
from test_rl_step_metrics import transfer_queue  # noqa: F401 (fixture)

from train.masked_grpo import NORMALISATIONS, group_advantages, masked_grpo_loss

CLIP_LOW, CLIP_HIGH, CLIP_C = 0.2, 0.3, 3.0


# --- the reference alone -----------------------------------------------------------------------------------


def test_advantages_use_all_g_and_masking_zeroes_them() -> None:
    """rl_engines.md §1(d): rewards [1,0,1,0] with sample 3 over-turn give A' = [0.866, -0.866, 0.866, 0]."""
    a = group_advantages(torch.tensor([1.0, 0.0, 1.0, 0.0]), ["q"] * 4)
    expected = 0.5 / (math.sqrt(1 / 3) + 1e-6)  # mean 0.5, unbiased std sqrt(1/3)
    assert torch.allclose(a, torch.tensor([expected, -expected, expected, -expected]))
    assert group_advantages(torch.tensor([0.7]), ["solo"]).item() == pytest.approx(0.7)  # no baseline


def _one_group(lengths: list[int], completed: list[bool], rewards: list[float], seed: int = 0) -> dict:
    torch.manual_seed(seed)
    T = max(lengths)
    mask = torch.tensor([[t < n for t in range(T)] for n in lengths], dtype=torch.float64)
    return {
        "log_prob": torch.randn(len(lengths), T, dtype=torch.float64) * 0.3 - 1,
        "old_log_prob": torch.randn(len(lengths), T, dtype=torch.float64) * 0.3 - 1,
        "rewards": torch.tensor(rewards, dtype=torch.float64), "token_mask": mask,
        "completed": torch.tensor(completed), "groups": ["q"] * len(lengths),
    }  # fmt: skip


def test_the_three_normalisations_agree_without_overturn_and_equal_lengths() -> None:
    batch = _one_group([5, 5, 5, 5], [True] * 4, [1, 0, 1, 0])
    losses = [masked_grpo_loss(**batch, normalisation=n).item() for n in NORMALISATIONS]
    assert losses[0] == pytest.approx(losses[1], abs=1e-12) and losses[1] == pytest.approx(
        losses[2], abs=1e-12
    )


def test_the_three_normalisations_differ_with_masked_trajectories_of_unequal_lengths() -> None:
    batch = _one_group([3, 9, 4, 12, 6, 2], [True, True, False, True, False, True], [1, 0, 0, 1, 0, 1])
    paper, released, token = (masked_grpo_loss(**batch, normalisation=n).item() for n in NORMALISATIONS)
    assert abs(paper - released) > 1e-3 and abs(paper - token) > 1e-3 and abs(released - token) > 1e-3
    # paper averages over the 4 completed trajectories, the released code over all 6: a ratio of 6/4
    assert paper == pytest.approx(released * 6 / 4, rel=1e-12)


def test_an_all_overturn_group_contributes_nothing_and_no_nan() -> None:
    batch = _one_group([3, 5, 4], [False] * 3, [0, 0, 0])
    for n in NORMALISATIONS:
        assert masked_grpo_loss(**batch, normalisation=n).item() == 0.0


# --- verl's path against the reference ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def objective() -> ModuleType:
    require_verl()
    from train.rl import objective

    return objective


def _trajectory_keys(uids: list[str]) -> list[str]:
    """TransferQueue keys as the v1 agent-loop worker writes them, `{uid}_{session}_{output}`: one session per
    trajectory of a group (the v1 GRPO path keeps each session's last output)."""
    sessions: dict[str, int] = {}
    keys = []
    for u in uids:
        keys.append(f"{u}_{sessions.get(u, 0)}_0")
        sessions[u] = sessions.get(u, 0) + 1
    return keys


def _verl_advantages(name: str, rewards: torch.Tensor, response_mask: torch.Tensor, lengths: torch.Tensor,
                     uids: list[str], group_size: int) -> torch.Tensor:  # fmt: skip
    """Advantages as verl's v1 trainer computes them (PPOTrainer._compute_advantage): the reward sits at the
    last response token whatever the mask, the estimator is dispatched by verl itself, and it gets verl's
    `algorithm` section, with the group size the launcher puts there."""
    import numpy as np
    from omegaconf import OmegaConf
    from verl import DataProto
    from verl.trainer.ppo.v1.utils import compute_advantage_for_multi_trajectories

    from train.rl.objective import GROUP_SIZE_KEY

    scores = torch.zeros_like(response_mask)
    scores[torch.arange(len(rewards)), lengths - 1] = rewards.to(scores.dtype)
    data = DataProto.from_dict(
        tensors={"token_level_rewards": scores, "response_mask": response_mask},
        non_tensors={"uid": np.array(uids, dtype=object)},
    )
    data = compute_advantage_for_multi_trajectories(
        data, batch_keys=_trajectory_keys(uids), adv_estimator=name, norm_adv_by_std_in_grpo=True,
        config=OmegaConf.create({"adv_estimator": name, "norm_adv_by_std_in_grpo": True, GROUP_SIZE_KEY: group_size}),
    )  # fmt: skip
    return data.batch["advantages"]


def _actor_config(loss_agg_mode: str) -> Any:
    from verl.workers.config import ActorConfig

    return ActorConfig(
        strategy="fsdp", ppo_micro_batch_size_per_gpu=1, rollout_n=1, clip_ratio_low=CLIP_LOW,
        clip_ratio_high=CLIP_HIGH, clip_ratio_c=CLIP_C, loss_agg_mode=loss_agg_mode,
    )  # fmt: skip


def _verl_minibatch_loss(objective: ModuleType, normalisation: str, log_prob: torch.Tensor,
                         old_log_prob: torch.Tensor, advantages: torch.Tensor, response_mask: torch.Tensor,
                         dp: int, micro: int, rng: random.Random) -> torch.Tensor:  # fmt: skip
    """One mini-batch through the registered loss as verl's actor runs it: rows shuffled over `dp` ranks ×
    `micro` micro-batches; each call sees verl's global batch info (workers/utils/losses.py::ppo_loss: the
    all-reduced token count, the mini-batch's row count, dp_size); FSDP averages the ranks' gradients, so the
    effective loss is the ranks' mean of their summed micro-batch losses."""
    from verl.trainer.ppo.core_algos import get_policy_loss_fn

    settings = objective.VERL_OBJECTIVES[normalisation]
    loss_fn = get_policy_loss_fn(settings.loss_mode)
    config = _actor_config(settings.loss_agg_mode)
    config.global_batch_info.update(
        dp_size=dp, batch_num_tokens=int(response_mask.sum()), global_batch_size=len(response_mask),
        loss_scale_factor=None,
    )  # fmt: skip
    order = list(range(len(response_mask)))
    rng.shuffle(order)
    chunks = [order[k :: dp * micro] for k in range(dp * micro)]
    total = log_prob.new_zeros(())
    for rows in chunks:
        loss, _ = loss_fn(
            old_log_prob=old_log_prob[rows], log_prob=log_prob[rows], advantages=advantages[rows],
            response_mask=response_mask[rows].bool(), loss_agg_mode=settings.loss_agg_mode, config=config,
            rollout_is_weights=None,
        )  # fmt: skip
        total = total + loss
    return total / dp


def _random_step(groups: int, g: int, seed: int) -> dict:
    """A step batch: `groups` questions × `g` trajectories, unequal lengths, ~30% over-turn (some groups
    entirely), binary rewards with over-turn ones 0, log-ratios wide enough to hit both clips and the dual clip."""
    gen = torch.Generator().manual_seed(seed)
    B, T = groups * g, 24
    lengths = torch.randint(1, T + 1, (B,), generator=gen)
    token_mask = (torch.arange(T)[None, :] < lengths[:, None]).to(torch.float64)
    completed = torch.rand(B, generator=gen) > 0.3
    completed[:g] = False  # one group entirely over-turn
    rewards = torch.where(completed, (torch.rand(B, generator=gen) > 0.5).to(torch.float64), 0.0)
    old = torch.randn(B, T, generator=gen, dtype=torch.float64) - 1
    return {
        "lengths": lengths, "token_mask": token_mask, "completed": completed, "rewards": rewards, "old_log_prob": old,
        "log_prob": old + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.6,
        "uids": [f"q{i // g}" for i in range(B)],
    }  # fmt: skip


@pytest.mark.parametrize("normalisation", NORMALISATIONS)
@pytest.mark.parametrize("dp,micro", [(1, 1), (2, 2), (2, 4)])
def test_verl_path_equals_the_reference(
    objective: ModuleType, normalisation: str, dp: int, micro: int
) -> None:
    step = _random_step(groups=6, g=8, seed=dp * 10 + micro)
    response_mask = step["token_mask"] * step["completed"][:, None]  # what the agent loop hands verl
    adv = _verl_advantages(
        objective.VERL_OBJECTIVES[normalisation].adv_estimator, step["rewards"], response_mask, step["lengths"],
        step["uids"], group_size=8,
    )  # fmt: skip
    rng = random.Random(0)
    for mini in (slice(0, 16), slice(16, 48)):  # mini-batches of whole groups, cut after the advantages
        log_prob = step["log_prob"][mini].clone().requires_grad_(True)
        ref_log_prob = step["log_prob"][mini].clone().requires_grad_(True)
        verl_loss = _verl_minibatch_loss(
            objective, normalisation, log_prob, step["old_log_prob"][mini], adv[mini], response_mask[mini],
            dp, micro, rng,
        )  # fmt: skip
        ref_loss = masked_grpo_loss(
            ref_log_prob, step["old_log_prob"][mini], step["rewards"][mini], step["token_mask"][mini],
            step["completed"][mini], step["uids"][mini], normalisation, CLIP_LOW, CLIP_HIGH, CLIP_C,
        )  # fmt: skip
        assert verl_loss.item() == pytest.approx(ref_loss.item(), abs=1e-6)
        verl_loss.backward()
        ref_loss.backward()
        assert torch.allclose(log_prob.grad, ref_log_prob.grad, atol=1e-6)


def test_paper_estimator_scales_each_group_by_g_over_completed(objective: ModuleType) -> None:
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    lengths = torch.tensor([3, 4, 2, 5, 3, 3])
    mask = (torch.arange(5)[None, :] < lengths[:, None]).float()
    mask[3] = 0  # over-turn in group a; group b entirely over-turn
    mask[4:] = 0
    uids = ["a", "a", "a", "a", "b", "b"]
    adv = _verl_advantages(objective.ESTIMATOR, rewards, mask, lengths, uids, group_size=4)
    stock = 0.5 / (math.sqrt(1 / 3) + 1e-6)
    per_row = adv.sum(-1) / mask.sum(-1).clamp(min=1)
    expected = torch.tensor([stock, -stock, stock, 0.0, 0.0, 0.0]) * torch.tensor([4 / 3] * 4 + [0.0] * 2)
    assert torch.allclose(per_row, expected, atol=1e-6)
    assert objective.completed_scale(mask, uids, 4).tolist() == pytest.approx([4 / 3] * 4 + [0.0] * 2)


def test_a_partial_groups_completed_rows_keep_the_papers_weight(objective: ModuleType) -> None:
    """The issue's case: G = 4, two questions a mini-batch (B = 2), one trajectory of group a failed (absent),
    of its 3 rows 2 completed and 1 is over-turn. The paper weighs a completed row 1/(B·ΣM) = 1/(2·2) = 0.25;
    scaling by the rows present instead (3/2) gave 3/2 / (B·G) = 0.1875."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    lengths = torch.tensor([3, 4, 2, 5, 3, 3, 2])
    mask = (torch.arange(5)[None, :] < lengths[:, None]).float()
    mask[2] = 0  # a's over-turn row
    uids = ["a"] * 3 + ["b"] * 4
    adv = _verl_advantages(objective.ESTIMATOR, rewards, mask, lengths, uids, group_size=4)
    # group a's stock GRPO: rewards 1, 0, 0 (the over-turn's 0 counts), mean 1/3, unbiased variance
    # ((2/3)² + 2·(1/3)²)/2 = 1/3
    stock = torch.tensor([2 / 3, -1 / 3]) / (math.sqrt(1 / 3) + 1e-6)
    per_row = adv.sum(-1) / mask.sum(-1).clamp(min=1)
    weight = per_row[:2] / stock[:2] / (2 * 4)  # the row's factor over stock GRPO, through seq-mean's 1/(B·G)
    assert weight.tolist() == pytest.approx([0.25, 0.25])


@pytest.mark.parametrize("loss_agg_mode", ["token-mean", "seq-mean-token-mean"])
def test_an_all_masked_minibatch_gives_zero_loss_not_nan(objective: ModuleType, loss_agg_mode: str) -> None:
    from verl.trainer.ppo.core_algos import get_policy_loss_fn

    log_prob = torch.randn(4, 6, dtype=torch.float64).requires_grad_(True)
    mask = torch.zeros(4, 6, dtype=torch.bool)
    config = _actor_config(loss_agg_mode)
    config.global_batch_info.update(
        dp_size=1, batch_num_tokens=0, global_batch_size=None, loss_scale_factor=None
    )
    kwargs = {"old_log_prob": log_prob.detach() - 0.1, "log_prob": log_prob, "advantages": torch.zeros(4, 6),
                  "response_mask": mask, "loss_agg_mode": loss_agg_mode, "config": config, "rollout_is_weights": None}  # fmt: skip
    unguarded, _ = get_policy_loss_fn("vanilla")(**kwargs)
    assert torch.isnan(unguarded)  # why the guard exists: verl divides by a zero count
    loss, metrics = get_policy_loss_fn(objective.POLICY_LOSS)(**kwargs)
    assert loss.item() == 0.0 and all(v == 0.0 for v in metrics.values())
    loss.backward()  # still on the graph: every data-parallel rank must run backward
    assert log_prob.grad is not None and torch.count_nonzero(log_prob.grad) == 0


# --- a partial group through verl's replay buffer and loss ---------------------------------------------------


def session_server(rl: ModuleType, scripts: dict[str, list[list[str] | None]]) -> Any:
    """verl's LLM server scripted per trajectory: the k-th trajectory of a question to ask for a first turn
    follows scripts[question][k] (turn by turn); None makes that trajectory's rollout fail (the server raises,
    as a dead inference server or a judge failure would)."""

    class SessionServer(rl.ScriptedServer):  # type: ignore[name-defined,misc]
        def __init__(self) -> None:
            self.sessions: dict[str, tuple[str, int]] = {}  # verl's request id -> (question, k)
            self.request_id = ""
            super().__init__(self.reply, list(scripts))

        async def generate(self, *, request_id: str, **kwargs: Any) -> Any:
            self.request_id = request_id  # read by reply(), called before super().generate awaits anything
            return await super().generate(**kwargs)

        def reply(self, question: str, turn: int) -> str:
            k = sum(q == question for q, _ in self.sessions.values())
            _, k = self.sessions.setdefault(self.request_id, (question, k))
            script = scripts[question][k]
            if script is None:
                raise RuntimeError(f"scripted rollout failure: {question} #{k}")
            return script[turn]

    return SessionServer()


def by_value(rl: ModuleType, cfg: Any) -> Any:
    """verl's reward worker in process, handed a copy of each request as Ray hands its actor one (a pickle).
    verl's reward manager updates the request's `extra_info` in place with the trajectory's fields, and the
    sessions of one prompt share that dict: passed by reference, concurrent sessions would score each
    other's answers."""
    handle = rl.LocalRewardHandle(cfg)
    remote = handle.compute_score.remote
    handle.compute_score = SimpleNamespace(remote=lambda data: remote(pickle.loads(pickle.dumps(data))))
    return handle


@pytest.mark.slow
def test_a_failed_trajectory_leaves_the_papers_weight_through_verls_replay_buffer_and_loss(
    objective: ModuleType, rl: ModuleType, setup: dict[str, Any], transfer_queue: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two questions × G = 4 through verl's real v1 path on CPU: its prompt submission, its TransferQueue
    agent-loop worker (our loop, our reward), its sync replay buffer (which keeps training a group whose
    trajectory failed), its padding to whole mini-batches, its advantage step with our estimator, then our
    registered loss as verl's actor calls it (2 ranks × 2 micro-batches). The loss equals the paper's, with
    the failed group's statistics and ΣM over the trajectories it has, and its completed rows weigh 1/(B·ΣM)."""
    import uuid

    import numpy as np
    import transfer_queue as tq
    import verl.utils.tensordict_utils as tu
    import verl.workers.config.model as model_config_module
    from test_rl_agent_loop import A, answer, rows_for, zoom
    from test_rl_step_metrics import InProcessRollout, step_config
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size
    from verl.trainer.ppo.v1 import get_trainer_cls
    from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopWorkerTQ
    from verl.utils.dataset.rl_dataset import collate_fn

    g, partial, full = 4, "Case partial: what colour is the sign?", "Case full: what colour is the sign?"
    over_turn = [zoom(A), zoom(A), zoom(A)]  # still zooming at the 3rd and last turn
    server = session_server(rl, {
        partial: [[answer("B")], [answer("A")], None, over_turn],  # right, wrong, failed, over-turn
        full: [[answer("B")], [answer("A")], [answer("A")], [answer("B")]],
    })  # fmt: skip
    cfg = step_config(rl, setup, questions=2, n=g, overrides=["actor_rollout_ref.actor.ppo_mini_batch_size=2"])
    trainer = get_trainer_cls(cfg.trainer.v1.trainer_mode)(cfg)
    trainer._init_resource_pool_mgr()
    monkeypatch.setattr(model_config_module, "hf_processor", rl.load_processor)
    worker = AgentLoopWorkerTQ.__ray_actor_class__(
        cfg, llm_client=server, reward_loop_worker_handles=[by_value(rl, cfg)]
    )
    server.tokenizer = worker.tokenizer
    batch_dict = collate_fn(rl.dataset_rows(cfg, worker, rows_for(setup, [partial, full], "released")))
    batch_dict["uid"] = np.array([str(uuid.uuid4()) for _ in range(2)], dtype=object)
    batch = tu.get_tensordict(batch_dict)
    tu.assign_non_tensor_data(batch, "global_steps", 1)
    trainer.global_steps = 1
    trainer.agent_loop_manager = InProcessRollout(worker)
    trainer._submit_batch_to_rollout(batch)

    step, _ = trainer.replay_buffer.sample(global_steps=1, partition_id="train", batch_size=2)
    assert len(step.keys) == 2 * g - 1  # the failed group is trained on with the 3 trajectories it has
    step = upsample_batch_to_divisible_size(step, 2 * g, worker.tokenizer.eos_token_id)  # one all-masked pad row
    step = trainer._compute_advantage(step, {})
    fields = ["uid", "response_mask", "rm_scores", "advantages"]
    data = tq.kv_batch_get(keys=step.keys, partition_id="train", select_fields=fields)
    data = data.to_padded_tensor()  # as verl's _compute_advantage reads it
    uids = [str(u) for u in data.pop("uid").tolist()]
    mask, adv = data["response_mask"].to(torch.float64), data["advantages"].to(torch.float64)
    rewards = data["rm_scores"].sum(-1).to(torch.float64)
    real = [i for i, u in enumerate(uids) if not u.startswith("pad")]
    assert len(real) == 2 * g - 1

    # the weight: a completed row of the partial group over its stock GRPO advantage, through seq-mean's 1/(B·G)
    a = [i for i in real if uids[i] == batch_dict["uid"][0]]
    done = [i for i in a if mask[i].sum() > 0]
    assert len(a) == 3 and len(done) == 2 and sorted(rewards[a].tolist()) == [0.0, 0.0, 1.0]
    r = rewards[a]
    stock = ((r - r.mean()) / (r.std() + 1e-6))[[a.index(i) for i in done]]
    factor = (adv[done].sum(-1) / mask[done].sum(-1)) / stock
    assert (factor / (2 * g)).tolist() == pytest.approx([1 / (2 * 2)] * 2)  # 1/(B·ΣM) = 0.25, not 0.1875

    # the loss and its gradient, as verl's actor computes them, against the plain-torch paper objective
    gen = torch.Generator().manual_seed(0)
    old = torch.randn(mask.shape, generator=gen, dtype=torch.float64) - 1
    new = old + torch.randn(mask.shape, generator=gen, dtype=torch.float64) * 0.6
    log_prob, ref_log_prob = new.clone().requires_grad_(True), new[real].clone().requires_grad_(True)
    verl_loss = _verl_minibatch_loss(objective, "paper", log_prob, old, adv, mask, 2, 2, random.Random(0))
    ref_loss = masked_grpo_loss(
        ref_log_prob, old[real], rewards[real], mask[real], mask[real].sum(-1) > 0, [uids[i] for i in real], "paper",
        CLIP_LOW, CLIP_HIGH, CLIP_C,
    )  # fmt: skip
    assert verl_loss.item() == pytest.approx(ref_loss.item(), abs=1e-6)  # verl keeps advantages in float32
    verl_loss.backward()
    ref_loss.backward()
    assert torch.allclose(log_prob.grad[real], ref_log_prob.grad, atol=1e-6)
