"""The verl config of a masked-GRPO run: verl's own `ppo_trainer` with the released Mini-o3 run's settings
laid over it, written as one Hydra primary config (`minio3_rl.yaml`) that verl's `main_ppo` runs as is.

Released run (minio3_official.md §8) -> verl 0.9.1 key, where it applies:
  train_batch_size 256, ppo_mini_batch_size 32, ppo_micro_batch_size_per_gpu 1, n 16, lr 1e-6, grad clip 1.0,
  clip_ratio_low 0.2 / clip_ratio_high 0.3, use_kl_loss False and no reference model, entropy_coeff 0,
  gradient checkpointing, remove padding, max_prompt_length 8192, max_total_response_length 32768 (verl's
  max_response_length is the whole response after the prompt, tool turns included), max_pixels 2,000,000 /
  min_pixels 40,000 (the first view's size is in each data row), limit_mm_per_prompt.image 12
  (rollout.limit_images), vLLM async, tp 1, gpu_memory_utilization 0.6, max_num_batched_tokens 32768,
  temperature 1.0 / top_p 1 / top_k -1 (validation sampled at temperature 1 too), turn budgets 6 / 12 (per
  data row), rejection_sample (a group whose rewards are all equal is dropped and refilled, over-turn
  ones included: verl's DAPO group filter on `reward`), save_freq 25, test_freq 5, total_epochs 100.
Not carried over: the released per-turn cap of 8192 new tokens (verl budgets the whole response),
free_cache_engine False (verl's colocated engine frees vLLM's cache for training), enable_chunked_prefill False
(verl then needs max_num_batched_tokens >= max_model_len), and the GPT-4o judge (`--judge`).
verl's dual clip (`clip_ratio_c` 3.0) stays on, as in the verl the release forked.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_type_hints

from train.rl.budgets import MAX_IMAGES

if TYPE_CHECKING:
    from train.masked_grpo import Normalisation

CONFIG_NAME = "minio3_rl"  # the primary config file, minio3_rl.yaml in the run dir
VERL_CONFIG = "pkg://verl.trainer.config"  # where ppo_trainer.yaml is, found on every node by package
CHECKPOINTS = "checkpoints"


def released_settings(
    *, model: str, train_file: str, val_file: str, out: Path, nnodes: int, gpus_per_node: int, rollout_n: int,
    max_turns: int, normalisation: Normalisation, on_collapse: str,
) -> dict[str, Any]:  # fmt: skip
    """Dotted verl keys -> values: the released run's settings, our objective, the tool-use collapse alarm's
    settings (`minio3.collapse.*`, read by our trainers), and this run's paths."""
    from train.rl.collapse import SECTION, CollapseSettings  # verl: imported once the rl extra is known to be there
    from train.rl.objective import GROUP_SIZE_KEY, VERL_OBJECTIVES

    objective = VERL_OBJECTIVES[normalisation]
    collapse = asdict(CollapseSettings(on_collapse=on_collapse))  # type: ignore[arg-type]
    return {
        # data: rows from train/rl/data.py; images and ground truth are in each row
        "data.train_files": train_file,
        "data.val_files": val_file,
        "data.train_batch_size": 256,
        "data.max_prompt_length": 8192,
        "data.max_response_length": 32768,
        "data.return_raw_chat": True,
        "data.image_key": "images",
        "data.truncation": "error",
        # the policy
        "actor_rollout_ref.model.path": model,
        "actor_rollout_ref.model.enable_gradient_checkpointing": True,
        "actor_rollout_ref.model.use_remove_padding": True,
        "actor_rollout_ref.actor.optim.lr": 1e-6,
        "actor_rollout_ref.actor.grad_clip": 1.0,
        "actor_rollout_ref.actor.ppo_mini_batch_size": 32,
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu": 1,
        "actor_rollout_ref.actor.ppo_epochs": 1,
        "actor_rollout_ref.actor.clip_ratio_low": 0.2,
        "actor_rollout_ref.actor.clip_ratio_high": 0.3,
        "actor_rollout_ref.actor.use_kl_loss": False,
        "actor_rollout_ref.actor.entropy_coeff": 0.0,
        "actor_rollout_ref.actor.loss_agg_mode": objective.loss_agg_mode,
        "actor_rollout_ref.actor.policy_loss.loss_mode": objective.loss_mode,
        "algorithm.adv_estimator": objective.adv_estimator,
        f"algorithm.{GROUP_SIZE_KEY}": "${actor_rollout_ref.rollout.n}",  # G for our estimator, whatever n is
        "algorithm.norm_adv_by_std_in_grpo": True,
        "algorithm.use_kl_in_reward": False,
        "algorithm.filter_groups.enable": True,  # the released rejection_sample: drop zero-variance groups
        "algorithm.filter_groups.metric": "reward",
        # the rollout: vLLM, multi-turn, G trajectories per question
        "actor_rollout_ref.rollout.name": "vllm",
        "actor_rollout_ref.rollout.mode": "async",
        "actor_rollout_ref.rollout.n": rollout_n,
        "actor_rollout_ref.rollout.temperature": 1.0,
        "actor_rollout_ref.rollout.top_p": 1.0,
        "actor_rollout_ref.rollout.top_k": -1,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": 1,
        "actor_rollout_ref.rollout.gpu_memory_utilization": 0.6,
        "actor_rollout_ref.rollout.max_num_batched_tokens": 32768,
        "actor_rollout_ref.rollout.limit_images": MAX_IMAGES,
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu": 1,
        "actor_rollout_ref.rollout.val_kwargs.temperature": 1.0,
        "actor_rollout_ref.rollout.val_kwargs.do_sample": True,
        "actor_rollout_ref.rollout.val_kwargs.n": 1,
        # multi_turn.enable and the agent loop: plugins.rollout_config, laid over these
        # the outer cap; each row's extra_info.max_turns is the budget the agent loop enforces
        "actor_rollout_ref.rollout.multi_turn.max_assistant_turns": max_turns,
        "actor_rollout_ref.rollout.multi_turn.max_tool_response_length": 2048,  # observation/error text, never cut
        # the trainer
        "trainer.nnodes": nnodes,
        "trainer.n_gpus_per_node": gpus_per_node,
        "trainer.total_epochs": 100,
        "trainer.save_freq": 25,
        "trainer.test_freq": 5,
        "trainer.project_name": "minio3",
        "trainer.experiment_name": out.name,
        "trainer.default_local_dir": str(out / CHECKPOINTS),
        "trainer.logger": ["console"],
        **{f"{SECTION}.{key}": value for key, value in collapse.items()},
    }


def minio3_key_types() -> dict[str, Any]:
    """The types of the keys minio3 adds to verl's config (verl's schema has none for them)."""
    from train.rl.collapse import SECTION, CollapseSettings
    from train.rl.objective import GROUP_SIZE_KEY

    hints = get_type_hints(CollapseSettings)
    sections = {part: dict for part in ("minio3", SECTION)}
    return {
        f"algorithm.{GROUP_SIZE_KEY}": int, **sections,
        **{f"{SECTION}.{f.name}": hints[f.name] for f in fields(CollapseSettings)},
    }  # fmt: skip


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1, "a.c": 2} -> {"a": {"b": 1, "c": 2}}."""
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def primary_config(settings: dict[str, Any]) -> dict[str, Any]:
    """The Hydra primary config: verl's ppo_trainer first, then `settings` over it (new keys allowed here,
    unlike on the command line, where they need a `+`)."""
    return {"hydra": {"searchpath": [VERL_CONFIG]}, "defaults": ["ppo_trainer", "_self_"], **nest(settings)}


__all__ = ["CHECKPOINTS", "CONFIG_NAME", "minio3_key_types", "nest", "primary_config", "released_settings"]
