"""A per-GPU memory estimate of a masked-GRPO run, from the model's config.json and the run's verl config.

An ESTIMATE, written down from how verl 0.9.1 trains and rolls out, not measured on GPUs; it says whether a
setting is in the right range before a GPU is asked for. Under FSDP (verl's `dp` engine) every piece of
training state is sharded over the `fsdp_size` GPUs (all of the run's GPUs by default):

  weights      P × b / S          b = bytes of `fsdp_config.model_dtype` (fp32 when training: 4; bf16: 2)
  gradients    P_t × b / S        P_t = trainable parameters (all of P, or the LoRA adapters)
  optimizer    2 × P_t × b / S    AdamW's two moments, in the parameters' dtype
  activations  one micro-batch of T tokens (T = micro-batch × (prompt + response), or
               `ppo_max_token_len_per_gpu` with dynamic batch size; divided by the Ulysses degree), with
               gradient checkpointing: each decoder layer's bf16 input (2·h bytes a token), one layer
               recomputed for its backward (2·(10·h + 3·kv + 4·I) bytes a token: the bf16 tensors a
               Qwen2 decoder layer keeps), the logits and their gradient (2 × 2·V bytes a token), and the
               vision tower the same way over the patches of `rollout.limit_images` images at the protocol's
               largest view (at most T image tokens)
  rollout      `rollout.gpu_memory_utilization` × GPU memory: vLLM's own budget (its weights and KV cache)

The phases are not resident at once: verl's colocated vLLM sleeps during training and the trainer offloads
what `param_offload` / `optimizer_offload` say during rollout. So the peak is the largest of
  training:  weights + gradients + activations (+ optimizer unless offloaded),
  update:    weights + gradients + optimizer,
  rollout:   vLLM's budget + weights (unless `param_offload`) + optimizer (unless `optimizer_offload`).
CUDA context, allocator fragmentation and NCCL buffers (a few GiB) are not counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minio3_data.display import CROP_MAX_PIXELS
from minio3_data.errors import BadInputError

GIB = 1024**3
DEFAULT_GPU_GIB = 80.0  # an 80 GB A100 / H100
DTYPE_BYTES = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}
TEXT_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class TextShape:
    """The language model's sizes (a Qwen2 / Qwen3 decoder)."""

    vocab: int
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    tied: bool
    head_dim: int = 0  # 0: hidden / heads
    qkv_bias: bool = True  # Qwen2's; Qwen3 has none and normalises q and k instead

    @property
    def head(self) -> int:
        return self.head_dim or self.hidden // self.heads

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head

    def linears(self) -> dict[str, tuple[int, int]]:
        """Each decoder layer's linear layers: name -> (inputs, outputs)."""
        h, q, kv, i = self.hidden, self.heads * self.head, self.kv_dim, self.intermediate
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}  # fmt: skip

    def params(self) -> int:
        h = self.hidden
        extra = self.heads * self.head + 2 * self.kv_dim if self.qkv_bias else 2 * self.head  # biases | q/k norms
        per_layer = sum(a * b for a, b in self.linears().values()) + extra + 2 * h  # + two RMSNorms
        heads = 1 if self.tied else 2
        return heads * self.vocab * h + self.layers * per_layer + h


@dataclass(frozen=True)
class VisionShape:
    """Qwen2.5-VL's vision tower (Qwen3-VL's, whose MLP is not gated and which adds DeepStack mergers, is
    counted as if it were: a few percent of a 7B model's parameters)."""

    depth: int
    hidden: int
    intermediate: int
    out_hidden: int
    patch: int
    temporal_patch: int
    merge: int
    channels: int = 3

    def params(self) -> int:
        hv, iv = self.hidden, self.intermediate
        patch_embed = self.channels * self.temporal_patch * self.patch**2 * hv  # Conv3d, no bias
        block = 2 * hv + (hv * 3 * hv + 3 * hv) + (hv * hv + hv) + 2 * (hv * iv + iv) + (iv * hv + hv)
        wide = hv * self.merge**2
        merger = hv + (wide * wide + wide) + (wide * self.out_hidden + self.out_hidden)
        return patch_embed + self.depth * block + merger

    def patches_per_image(self) -> int:
        """Patches of the largest view the protocol shows (CROP_MAX_PIXELS)."""
        return CROP_MAX_PIXELS // self.patch**2


@dataclass(frozen=True)
class ModelShape:
    text: TextShape
    vision: VisionShape | None

    def params(self) -> int:
        return self.text.params() + (self.vision.params() if self.vision else 0)

    def lora_params(self, rank: int, targets: str | list[str]) -> int:
        """LoRA adapters on the decoder layers' linear layers (`all-linear` or a list of their names)."""
        linears = self.text.linears()
        chosen = TEXT_LINEARS if targets == "all-linear" else [t for t in targets if t in linears]
        return self.text.layers * sum(rank * (linears[n][0] + linears[n][1]) for n in chosen)


def model_shape(config: Mapping[str, Any]) -> ModelShape:
    """The shapes in a Qwen2.5-VL-style config.json (the text keys at the top level or under `text_config`)."""
    text = config.get("text_config") or config
    try:
        shape = TextShape(
            vocab=int(text["vocab_size"]), hidden=int(text["hidden_size"]), layers=int(text["num_hidden_layers"]),
            intermediate=int(text["intermediate_size"]), heads=int(text["num_attention_heads"]),
            kv_heads=int(text.get("num_key_value_heads") or text["num_attention_heads"]),
            tied=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
            head_dim=int(text.get("head_dim") or 0), qkv_bias=bool(text.get("attention_bias", True)),
        )  # fmt: skip
        v = config.get("vision_config")
        vision = None if not v else VisionShape(
            depth=int(v["depth"]), hidden=int(v["hidden_size"]), intermediate=int(v["intermediate_size"]),
            out_hidden=int(v.get("out_hidden_size", shape.hidden)), patch=int(v.get("patch_size", 14)),
            temporal_patch=int(v.get("temporal_patch_size", 2)), merge=int(v.get("spatial_merge_size", 2)),
            channels=int(v.get("in_chans", v.get("in_channels", 3))),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError) as e:
        raise BadInputError(f"config.json: no {e} to estimate memory from; is it a Qwen2.5-VL-style model?") from None
    return ModelShape(shape, vision)


def estimate_lines(model_dir: Path, cfg: Mapping[str, Any], gpu_gib: float = DEFAULT_GPU_GIB) -> list[str]:
    """The estimate as the dry run prints it, or one line saying why there is none (a config.json it cannot
    read: the estimate informs, it never fails a run)."""
    path = model_dir / "config.json"
    try:
        return estimate(model_shape(json.loads(path.read_text())), cfg, gpu_gib).lines()
    except (OSError, ValueError, BadInputError) as e:
        return [f"memory per GPU: no estimate ({path}: {e})"]


@dataclass(frozen=True)
class Estimate:
    """Bytes per GPU, by piece and by phase."""

    weights: float
    gradients: float
    optimizer: float
    activations: float
    rollout: float
    param_offload: bool
    optimizer_offload: bool
    gpu_bytes: float

    @property
    def phases(self) -> dict[str, float]:
        training = self.weights + self.gradients + self.activations
        return {
            "training": training + (0.0 if self.optimizer_offload else self.optimizer),
            "update": self.weights + self.gradients + self.optimizer,
            "rollout": self.rollout + (0.0 if self.param_offload else self.weights)
            + (0.0 if self.optimizer_offload else self.optimizer),
        }  # fmt: skip

    @property
    def peak(self) -> float:
        return max(self.phases.values())

    def lines(self) -> list[str]:
        g = lambda b: f"{b / GIB:.1f}"  # noqa: E731
        pieces = (f"weights {g(self.weights)}, gradients {g(self.gradients)}, optimizer {g(self.optimizer)}, "
                  f"activations {g(self.activations)}, rollout engine {g(self.rollout)}")  # fmt: skip
        phases = ", ".join(f"{name} {g(b)}" for name, b in self.phases.items())
        verdict = "fits" if self.peak <= self.gpu_bytes else "does NOT fit"
        return [
            f"memory per GPU (GiB, an estimate until measured on GPUs; docs/rl.md): {pieces}",
            f"  by phase: {phases}; peak {g(self.peak)} of {g(self.gpu_bytes)} GiB: {verdict}",
        ]


def _tokens_per_micro_batch(actor: Mapping[str, Any], data: Mapping[str, Any]) -> int:
    if actor.get("use_dynamic_bsz"):
        tokens = int(actor["ppo_max_token_len_per_gpu"])
    else:
        tokens = int(actor["ppo_micro_batch_size_per_gpu"]) * (
            int(data["max_prompt_length"]) + int(data["max_response_length"])
        )
    return tokens // max(1, int(actor.get("ulysses_sequence_parallel_size") or 1))


def activation_bytes(shape: ModelShape, tokens: int, images: int) -> float:
    """One micro-batch of `tokens` tokens (at most `images` images of them), gradient checkpointing on."""
    t = shape.text
    per_token = 2 * t.hidden * t.layers + 2 * (10 * t.hidden + 3 * t.kv_dim + 4 * t.intermediate) + 4 * t.vocab
    total = float(tokens * per_token)
    if shape.vision is not None and images > 0:
        v = shape.vision
        image_tokens = min(tokens, images * v.patches_per_image() // v.merge**2)
        patches = image_tokens * v.merge**2
        total += patches * (2 * v.hidden * v.depth + 2 * (10 * v.hidden + 4 * v.intermediate))
    return total


def estimate(shape: ModelShape, cfg: Mapping[str, Any], gpu_gib: float = DEFAULT_GPU_GIB) -> Estimate:
    """The estimate for the resolved verl config `cfg` (plain dicts) on GPUs of `gpu_gib` GiB."""
    actor, model = cfg["actor_rollout_ref"]["actor"], cfg["actor_rollout_ref"]["model"]
    fsdp, rollout, trainer = actor["fsdp_config"], cfg["actor_rollout_ref"]["rollout"], cfg["trainer"]
    gpus = int(trainer["nnodes"]) * int(trainer["n_gpus_per_node"])
    shards = int(fsdp.get("fsdp_size") or -1)
    shards = gpus if shards <= 0 else min(shards, gpus)
    dtype = str(fsdp.get("model_dtype") or "fp32")
    if dtype not in DTYPE_BYTES:
        raise BadInputError(
            f"actor_rollout_ref.actor.fsdp_config.model_dtype={dtype!r}: use one of {', '.join(DTYPE_BYTES)}"
        )
    b = DTYPE_BYTES[dtype]
    params = shape.params()
    rank = int(model.get("lora_rank") or 0)
    trainable = shape.lora_params(rank, model.get("target_modules") or "all-linear") if rank > 0 else params
    gpu_bytes = gpu_gib * GIB
    tokens = _tokens_per_micro_batch(actor, cfg["data"])
    return Estimate(
        weights=params * b / shards, gradients=trainable * b / shards, optimizer=2 * trainable * b / shards,
        activations=activation_bytes(shape, tokens, int(rollout.get("limit_images") or 0)),
        rollout=float(rollout["gpu_memory_utilization"]) * gpu_bytes,
        param_offload=bool(fsdp.get("param_offload")), optimizer_offload=bool(fsdp.get("optimizer_offload")),
        gpu_bytes=gpu_bytes,
    )  # fmt: skip


__all__ = [
    "DEFAULT_GPU_GIB", "Estimate", "ModelShape", "TextShape", "VisionShape", "activation_bytes", "estimate",
    "estimate_lines", "model_shape",
]  # fmt: skip
