"""Masked GRPO on verl: a registered advantage estimator and a guarded policy loss (reference: train/masked_grpo.py).

The agent loop zeroes the `response_mask` of an over-turn trajectory, so Mᵢ = (response_mask.sum(-1) > 0) and
verl's stock GRPO statistics, taken over all G rows of a group (the over-turn ones keep their reward), give
A'ᵢ = Mᵢ·Aᵢ. What differs between the three normalisations is only how the loss is averaged:

  - `paper`, 1/ΣMᵢ per group: our estimator `minio3_masked_grpo` computes stock GRPO over all G and multiplies
    each row by G/ΣM_g (its group's size over its completed count; 0 when none completed), and the loss
    aggregates with `seq-mean-token-mean` (each row's token mean, divided by the mini-batch's row count
    `ppo_mini_batch_size × n`, fixed). A completed trajectory's weight is then exactly 1/(B·ΣM_g).
  - `released`, 1/G: stock `grpo` with `seq-mean-token-mean`, no rescaling.
  - `token-mean`: stock `grpo` with `token-mean` (verl divides by the all-reduced count of unmasked tokens).

How ΣM is obtained: not by an all-reduce in the policy loss. The loss runs once per micro-batch and sees
neither a sequence count nor the data-parallel group, so a count it all-reduced itself is exact only with one
micro-batch per rank (rl_engines.md §1(h): 0.1123 vs 0.1310 / 1.4577 with 2 / 4 micro-batches). The
estimator instead runs on the driver over the whole step batch, before it is cut into mini-batches,
micro-batches and ranks, with every group complete; each row carries its own factor G/ΣM_g, so the result
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


def completed_scale(response_mask: torch.Tensor, index: np.ndarray | list[Any]) -> torch.Tensor:
    """G/ΣM_g for each row's group (0 where no trajectory of the group completed), as a (B,) float tensor."""
    ids: dict[Any, int] = {}
    inverse = torch.tensor([ids.setdefault(u, len(ids)) for u in index], dtype=torch.long)
    done = (response_mask.sum(-1) > 0).to(torch.float64)
    size = torch.bincount(inverse, minlength=len(ids)).to(torch.float64)
    completed = torch.bincount(inverse, weights=done, minlength=len(ids))
    scale = torch.where(completed > 0, size / completed.clamp(min=1), torch.zeros_like(size))
    return scale[inverse].to(response_mask.device)


@core_algos.register_adv_est(ESTIMATOR)
def masked_grpo_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray,
    config: Any = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stock GRPO over all G (over-turn rows keep their reward in the mean and std; their zeroed mask makes
    A' = M·A), each row then scaled by G/ΣM_g so that `seq-mean-token-mean` averages over completed ones."""
    norm_by_std = config.get("norm_adv_by_std_in_grpo", True) if config is not None else True
    advantages, _ = core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=token_level_rewards, response_mask=response_mask, index=index, epsilon=EPS,
        norm_adv_by_std_in_grpo=norm_by_std,
    )  # fmt: skip
    advantages = advantages * completed_scale(response_mask, index).to(advantages.dtype)[:, None]
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
    "ESTIMATOR", "POLICY_LOSS", "VERL_OBJECTIVES", "VerlObjective", "completed_scale", "guarded_policy_loss",
    "masked_grpo_advantage",
]  # fmt: skip
