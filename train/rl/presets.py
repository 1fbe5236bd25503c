"""Single-node recipes (`minio3 train-rl --preset NAME`): verl settings laid over the released run's, for the
machines users have, not the released 64 GPUs. Each is validated by the dry run like any config, and the dry
run prints its per-GPU memory estimate (memory_estimate.py). Options given on the command line
(`--gpus-per-node`, `--rollout-n`, ...) and overrides after `--` still win over a preset.

The released run (8 × 8 GPUs): 256 questions × 16 trajectories a step, 8k prompt + 32k response tokens. The
presets keep its objective, sampling and turn budgets and scale the batch, the group and the context down:
  - `node-7b`: one node of 8 GPUs, a 7B model (Qwen2.5-VL-7B): 32 questions × 8, responses up to 16k tokens.
  - `gpu-3b`: one GPU, a 3B model (Qwen2.5-VL-3B), full fine-tuning with the FSDP state offloaded to CPU
    between phases (~60 GB of host memory): 8 questions × 8, responses up to 8k tokens.
  - `gpu-7b-lora`: one GPU, a 7B model with LoRA (verl's FSDP engine with vLLM rollout supports it): rank 64
    on the language model's linear layers (the vision tower frozen), bf16 weights, lr 1e-5 (LoRA trains at a
    higher rate than full fine-tuning's 1e-6), 8 questions × 8, responses up to 8k tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from minio3_data.errors import BadInputError

from .memory_estimate import DEFAULT_GPU_GIB


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str
    settings: dict[str, Any]  # dotted verl keys -> values, over the released run's
    gpus_per_node: int
    rollout_n: int
    gpu_gib: float = DEFAULT_GPU_GIB  # the GPUs the preset is sized for (its memory estimate's budget)
    nnodes: int = 1


ONE_GPU_BATCH: dict[str, Any] = {
    "data.train_batch_size": 8,
    "data.max_prompt_length": 4096,
    "data.max_response_length": 8192,
    "actor_rollout_ref.actor.ppo_mini_batch_size": 4,
    "actor_rollout_ref.rollout.gpu_memory_utilization": 0.4,
    "actor_rollout_ref.actor.fsdp_config.param_offload": True,
    "actor_rollout_ref.actor.fsdp_config.optimizer_offload": True,
}

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "node-7b", "one node of 8 GPUs, a 7B model", gpus_per_node=8, rollout_n=8,
            settings={
                "data.train_batch_size": 32,
                "data.max_response_length": 16384,
                "actor_rollout_ref.actor.ppo_mini_batch_size": 8,
                "actor_rollout_ref.rollout.gpu_memory_utilization": 0.5,
            },
        ),
        Preset("gpu-3b", "one GPU, a 3B model", gpus_per_node=1, rollout_n=8, settings=dict(ONE_GPU_BATCH)),
        Preset(
            "gpu-7b-lora", "one GPU, a 7B model with LoRA", gpus_per_node=1, rollout_n=8,
            settings={
                **ONE_GPU_BATCH,
                "actor_rollout_ref.model.lora_rank": 64,
                "actor_rollout_ref.model.lora_alpha": 128,
                "actor_rollout_ref.model.target_modules": "all-linear",
                "actor_rollout_ref.model.exclude_modules": ".*visual.*",
                "actor_rollout_ref.actor.fsdp_config.model_dtype": "bf16",
                "actor_rollout_ref.actor.optim.lr": 1e-5,
            },
        ),
    )
}  # fmt: skip


def get_preset(name: str | None) -> Preset | None:
    """The preset called `name` (None: none); a one-line error naming the choices for another name."""
    if name is None:
        return None
    if name not in PRESETS:
        raise BadInputError(f"--preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_help() -> str:
    return " | ".join(f"{p.name} ({p.summary})" for p in PRESETS.values())


__all__ = ["PRESETS", "Preset", "get_preset", "preset_help"]
