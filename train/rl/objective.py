"""Masked GRPO on verl: a registered advantage estimator and a guarded policy loss (reference: train/masked_grpo.py).

The agent loop zeroes the `response_mask` of an over-turn trajectory, so Mᵢ = (response_mask.sum(-1) > 0) and
verl's stock GRPO statistics, taken over all the rows of a group (the over-turn ones keep their reward), give
A'ᵢ = Mᵢ·Aᵢ. What differs between the three normalisations is only how the loss is averaged:

  - `paper`, 1/ΣMᵢ per group: our estimator `minio3_masked_grpo` computes stock GRPO over the group and
    multiplies each row by G/ΣM_g (G the configured group size `rollout.n`, ΣM_g its completed count; 0 when
    none completed), and the loss aggregates with `seq-mean-token-mean` (each row's token mean, divided by
    the mini-batch's row count `ppo_mini_batch_size × n`, fixed). A completed trajectory's weight is then
    exactly 1/(B·ΣM_g).
  - `released`, 1/G: stock `grpo` with `seq-mean-token-mean`, no rescaling.
  - `token-mean`: stock `grpo` with `token-mean` (verl divides by the all-reduced count of unmasked tokens).

Partial groups: when a trajectory fails (its agent loop or reward raised), verl's sync replay buffer
still trains the rest of its group (`trainer.v1.sampler.sync_refill_failed_groups` only replaces groups
with no trajectory left) and pads the batch with all-masked rows. The group's statistics are then over
the trajectories present, and G stays the configured size — not the rows present — because the loss
still divides by the fixed `ppo_mini_batch_size × n`: scaling by the present size instead would weigh a
3-of-4 group's completed rows by 3/4 of the paper's 1/(B·ΣM_g). The estimator reads G from
`algorithm.minio3_group_size`, which the launcher sets to `${actor_rollout_ref.rollout.n}` (verl passes an
estimator only the algorithm section).

How ΣM is obtained: not by an all-reduce in the policy loss. The loss runs once per micro-batch and sees
neither a sequence count nor the data-parallel group, so a count it all-reduced itself is exact only with one
micro-batch per rank (rl_engines.md §1(h): 0.1123 vs 0.1310 / 1.4577 with 2 / 4 micro-batches). The
estimator instead runs on the driver over the whole step batch, before it is cut into mini-batches,
micro-batches and ranks, with all of each group's present rows; each row carries its own factor G/ΣM_g, so the result
is exact in every DP/micro-batch layout (§1(h): 1 rank, 2 ranks × 2 micro-batches and shuffled 2 × 4 all
agree). PPO clipping commutes with scaling an advantage by a positive factor (min(ρcA, clip(ρ)cA) =
c·min(ρA, clip(ρ)A), and the dual clip is linear in A too), so the rescale is exact whatever the clipping.

The guarded loss `minio3_guarded` is verl's `vanilla` clipped loss, except that a micro-batch with no unmasked
token (every trajectory over-turn, or verl's padding rows) gives loss 0 instead of NaN (token-mean divides by
a zero token count) while staying attached to the graph: every data-parallel rank must still run backward,
or FSDP's gradient reduction waits for it forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo import core_algos
from verl.utils import torch_functional as verl_F

from train.masked_grpo import EPS, NORMALISATIONS, Normalisation

ESTIMATOR = "minio3_masked_grpo"
GROUP_SIZE_KEY = "minio3_group_size"  # in verl's `algorithm` section: the configured G (rollout.n)
POLICY_LOSS = "minio3_guarded"
STOCK_GRPO = "grpo"
PG_METRICS = ("actor/pg_clipfrac", "actor/ppo_kl", "actor/pg_clipfrac_lower")  # what `vanilla` reports


@dataclass(frozen=True)
class VerlObjective:
    """The verl settings that implement one normalisation."""

    adv_estimator: str
    loss_agg_mode: str
    loss_mode: str = POLICY_LOSS


VERL_OBJECTIVES: dict[Normalisation, VerlObjective] = {
    "paper": VerlObjective(ESTIMATOR, "seq-mean-token-mean"),
    "released": VerlObjective(STOCK_GRPO, "seq-mean-token-mean"),
    "token-mean": VerlObjective(STOCK_GRPO, "token-mean"),
}
assert set(VERL_OBJECTIVES) == set(NORMALISATIONS)


def completed_scale(response_mask: torch.Tensor, index: np.ndarray | list[Any], group_size: int) -> torch.Tensor:
    """G/ΣM_g for each row's group, G = `group_size` however many of its rows are present (0 where no
    trajectory of the group completed), as a (B,) float tensor."""
    ids: dict[Any, int] = {}
    inverse = torch.tensor([ids.setdefault(u, len(ids)) for u in index], dtype=torch.long)
    done = (response_mask.sum(-1) > 0).to(torch.float64)
    completed = torch.bincount(inverse, weights=done, minlength=len(ids))
    scale = torch.where(completed > 0, group_size / completed.clamp(min=1), torch.zeros_like(completed))
    return scale[inverse].to(response_mask.device)


def configured_group_size(config: Any) -> int:
    """G from verl's algorithm section (`algorithm.minio3_group_size`, set by the launcher to rollout.n)."""
    size = config.get(GROUP_SIZE_KEY) if config is not None else None
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(
            f"{ESTIMATOR} needs algorithm.{GROUP_SIZE_KEY} = the group size (actor_rollout_ref.rollout.n), got "
            f"{size!r}; minio3 train-rl sets it to ${{actor_rollout_ref.rollout.n}}"
        )
    return size


@core_algos.register_adv_est(ESTIMATOR)
def masked_grpo_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray,
    config: Any = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stock GRPO over the group's rows (over-turn rows keep their reward in the mean and std; their zeroed
    mask makes A' = M·A), each row then scaled by G/ΣM_g so that `seq-mean-token-mean` averages over completed
    ones, with G the configured group size even when failures left fewer rows."""
    group_size = configured_group_size(config)
    norm_by_std = config.get("norm_adv_by_std_in_grpo", True)
    advantages, _ = core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=token_level_rewards, response_mask=response_mask, index=index, epsilon=EPS,
        norm_adv_by_std_in_grpo=norm_by_std,
    )  # fmt: skip
    advantages = advantages * completed_scale(response_mask, index, group_size).to(advantages.dtype)[:, None]
    return advantages, advantages


@core_algos.register_policy_loss(POLICY_LOSS)
def guarded_policy_loss(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """verl's `vanilla` clipped loss; 0 (never NaN), still on the graph, for a micro-batch with no unmasked token."""
    if not bool(response_mask.any()):
        return verl_F.masked_sum(log_prob, response_mask) * 0.0, dict.fromkeys(PG_METRICS, 0.0)
    return core_algos.compute_policy_loss_vanilla(
        old_log_prob=old_log_prob, log_prob=log_prob, advantages=advantages, response_mask=response_mask,
        loss_agg_mode=loss_agg_mode, config=config, rollout_is_weights=rollout_is_weights,
    )  # fmt: skip


__all__ = [
    "ESTIMATOR", "GROUP_SIZE_KEY", "POLICY_LOSS", "VERL_OBJECTIVES", "VerlObjective", "completed_scale",
    "configured_group_size", "guarded_policy_loss", "masked_grpo_advantage",
]  # fmt: skip
