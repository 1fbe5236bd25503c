"""Masked GRPO, the objective of Mini-o3's RL stage, written from its formulas in plain torch.

Over-turn trajectories (still zooming at the last allowed turn, at the image cap, or out of context) have no
known correctness. They are not punished: they are masked out of the loss. With rewards rᵢ of a group of G
trajectories of one question, Mᵢ = 0 for an over-turn trajectory and 1 otherwise:

    Aᵢ  = (rᵢ − mean(r₁..r_G)) / (std(r₁..r_G) + 1e-6)     over all G (an over-turn one keeps its reward, 0)
    A'ᵢ = Mᵢ · Aᵢ
    sᵢₜ = min(ρᵢₜ A'ᵢ, clip(ρᵢₜ, 1 − ε_low, 1 + ε_high) A'ᵢ),  ρᵢₜ = π(oᵢₜ) / π_old(oᵢₜ)
    mᵢ  = (1/|oᵢ|) Σₜ sᵢₜ                                    over the model's own tokens of trajectory i

No KL and no entropy term. Three normalisations of the sum exist, and they differ whenever over-turn
trajectories have unequal lengths or groups differ in how many were masked:

  - `paper` (the project page's formula, our default): J = mean over groups of (1/ΣMᵢ) Σᵢ Mᵢ mᵢ, the
    per-trajectory objective averaged over the *completed* trajectories of each group;
  - `released` (the released code: token-mean over micro-batches of one trajectory, averaged over the
    mini-batch): J = (1/N) Σᵢ Mᵢ mᵢ over all N trajectories, over-turn ones counting as 0 — effectively 1/G;
  - `token-mean` (verl's default): J = Σᵢ Mᵢ Σₜ sᵢₜ / Σᵢ Mᵢ |oᵢ|, one mean over every unmasked token.

The loss is −J. These functions are the reference that verl's path (train/rl/objective.py: a registered
advantage estimator and a guarded policy loss) is tested against; they are deliberately written per group
and per trajectory, not the way the verl path computes them. The dual clip (`clip_c`, verl's
`clip_ratio_c`, default 3.0) bounds the loss of a negative advantage at c·|A'|; `None` leaves it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

Normalisation = Literal["paper", "released", "token-mean"]
NORMALISATIONS: tuple[Normalisation, ...] = ("paper", "released", "token-mean")
DEFAULT_NORMALISATION: Normalisation = "paper"
EPS = 1e-6  # verl's and the released code's epsilon in the advantage's denominator


def group_advantages(rewards: torch.Tensor, groups: Sequence[object], eps: float = EPS) -> torch.Tensor:
    """Aᵢ of each trajectory: its reward standardised within its group, over all members (masked or not),
    with the unbiased std. A group of one has no baseline: its advantage is its reward (verl's convention)."""
    out = torch.empty_like(rewards)
    for g in dict.fromkeys(groups):
        members = [i for i, x in enumerate(groups) if x == g]
        r = rewards[members]
        out[members] = r if len(members) == 1 else (r - r.mean()) / (r.std() + eps)
    return out


def surrogate(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantage: torch.Tensor,
    clip_low: float,
    clip_high: float,
    clip_c: float | None,
) -> torch.Tensor:
    """sᵢₜ, the clipped surrogate per token (B×T), for per-trajectory advantages `advantage` (B)."""
    a = advantage[:, None]
    ratio = torch.exp(log_prob - old_log_prob)
    s = torch.minimum(ratio * a, torch.clamp(ratio, 1 - clip_low, 1 + clip_high) * a)
    if clip_c is not None:
        s = torch.where(a < 0, torch.maximum(s, clip_c * a), s)
    return s


def masked_grpo_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    rewards: torch.Tensor,
    token_mask: torch.Tensor,
    completed: torch.Tensor,
    groups: Sequence[object],
    normalisation: Normalisation = DEFAULT_NORMALISATION,
    clip_low: float = 0.2,
    clip_high: float = 0.3,
    clip_c: float | None = 3.0,
) -> torch.Tensor:
    """−J of one mini-batch of whole groups. `token_mask` (B×T) marks the model's own tokens (not the
    observation turns); `completed` (B) is M; `groups` names each row's question."""
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"normalisation {normalisation!r}: use one of {', '.join(NORMALISATIONS)}")
    m = completed.to(log_prob.dtype)
    adv = m * group_advantages(rewards.to(log_prob.dtype), groups)
    s = surrogate(log_prob, old_log_prob, adv, clip_low, clip_high, clip_c)
    mask = token_mask.to(log_prob.dtype) * m[:, None]  # an over-turn trajectory has no token left
    lengths = token_mask.to(log_prob.dtype).sum(-1)
    per_traj = (s * mask).sum(-1) / lengths.clamp(min=1)  # mᵢ, already 0 where Mᵢ = 0
    if normalisation == "token-mean":
        total = mask.sum()
        objective = (s * mask).sum() / total if total > 0 else s.new_zeros(())
    elif normalisation == "released":
        objective = per_traj.sum() / len(groups)
    else:
        terms = []
        for g in dict.fromkeys(groups):
            members = [i for i, x in enumerate(groups) if x == g]
            done = m[members].sum()
            terms.append(per_traj[members].sum() / done if done > 0 else per_traj.new_zeros(()))
        objective = torch.stack(terms).mean()
    return -objective


__all__ = [
    "DEFAULT_NORMALISATION", "NORMALISATIONS", "Normalisation", "group_advantages", "masked_grpo_loss", "surrogate",
]  # fmt: skip
