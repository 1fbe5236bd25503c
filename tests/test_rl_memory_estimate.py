"""The per-GPU memory estimate's arithmetic (train/rl/memory_estimate.py), against cases counted by hand here:
parameter counts of a tiny Qwen2.5-VL-shaped model written out layer by layer, the published sizes of
Qwen2.5-VL-7B and -3B (and transformers' own count of them), and each piece and phase of the estimate."""

from __future__ import annotations

from typing import Any

from needs_verl import require_verl

from minio3_data.display import CROP_MAX_PIXELS
from train.rl.memory_estimate import GIB, estimate, model_shape

TINY = {  # text: V 10, h 8, 2 layers, I 16, 2 heads of 4, 1 KV head; vision: 1 block, h 4, I 6, 2-px patches
    "vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 2, "intermediate_size": 16, "num_attention_heads": 2,
    "num_key_value_heads": 1, "tie_word_embeddings": False,
    "vision_config": {"depth": 1, "hidden_size": 4, "intermediate_size": 6, "num_heads": 1, "out_hidden_size": 8,
                      "patch_size": 2, "temporal_patch_size": 2, "spatial_merge_size": 2, "in_chans": 3},
}  # fmt: skip
VISION = {"depth": 32, "hidden_size": 1280, "intermediate_size": 3420, "num_heads": 16, "patch_size": 14,
          "spatial_merge_size": 2, "temporal_patch_size": 2, "in_chans": 3}  # fmt: skip
QWEN25VL_7B = {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28,
               "num_key_value_heads": 4, "vocab_size": 152064, "tie_word_embeddings": False,
               "vision_config": {**VISION, "out_hidden_size": 3584}}  # fmt: skip
QWEN25VL_3B = {"hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36, "num_attention_heads": 16,
               "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True,
               "vision_config": {**VISION, "out_hidden_size": 2048}}  # fmt: skip


def test_parameter_counts_by_hand() -> None:
    # per layer: q 8·8, k 8·4, v 8·4, o 8·8, gate/up 8·16 each, down 16·8 = 576; q/k/v biases 8+4+4; 2 norms of 8
    layer = 576 + 16 + 16
    text = 2 * 10 * 8 + 2 * layer + 8  # embedding + lm_head, layers, final norm
    assert model_shape(TINY).text.params() == text == 1384
    assert model_shape({**TINY, "tie_word_embeddings": True}).text.params() == text - 80
    # patch embed 3·2·2·2·4; block: 2 norms 8, qkv 4·12+12, proj 4·4+4, gate/up (4·6+6)·2, down 6·4+4;
    # merger: norm 4, 16·16+16, 16·8+8
    vision = 96 + (8 + 60 + 20 + 60 + 28) + (4 + 272 + 136)
    assert model_shape(TINY).vision.params() == vision == 684  # type: ignore[union-attr]
    assert model_shape(TINY).params() == 1384 + 684
    # the text keys may sit under text_config (transformers 5 writes them so)
    text = {k: v for k, v in TINY.items() if k != "vision_config"}
    nested = {"text_config": text, "vision_config": TINY["vision_config"]}
    assert model_shape(nested).params() == 2068


def test_published_sizes_of_qwen25vl() -> None:
    assert model_shape(QWEN25VL_7B).params() == 8_292_166_656
    assert model_shape(QWEN25VL_3B).params() == 3_754_622_976


def test_counts_equal_transformers_own() -> None:
    """transformers builds the models on the meta device (no memory) and counts their parameters."""
    require_verl()  # transformers comes with the rl extra
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    for config in (TINY, QWEN25VL_3B):
        with torch.device("meta"):
            model = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**config))
        assert sum(p.numel() for p in model.parameters()) == model_shape(config).params()


def test_a_qwen3_decoder_counts_as_transformers_does() -> None:
    """Qwen3: head_dim apart from hidden / heads, no q/k/v biases but q and k norms."""
    require_verl()
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    text = {k: v for k, v in TINY.items() if k != "vision_config"} | {"head_dim": 6, "attention_bias": False}
    with torch.device("meta"):
        model = Qwen3ForCausalLM(Qwen3Config(**text))
    # per layer: q 8·12, k 8·6, v 8·6, o 12·8, MLP 3·128; q and k norms of 6; 2 norms of 8
    assert model_shape(text).params() == sum(p.numel() for p in model.parameters()) == 160 + 2 * (672 + 12 + 16) + 8


def test_a_config_it_cannot_read_is_a_line_not_a_failure(tmp_path: Any) -> None:
    from train.rl.memory_estimate import estimate_lines

    (tmp_path / "config.json").write_text('{"model_type": "mystery"}')
    (line,) = estimate_lines(tmp_path, run_config())
    assert line.startswith("memory per GPU: no estimate (") and "config.json: no 'vocab_size'" in line


def run_config(*, gpus: int = 2, dtype: str = "fp32", lora_rank: int = 0, offload: bool = False,
               dynamic: bool = False) -> dict[str, Any]:  # fmt: skip
    """The verl keys the estimate reads: micro-batch of 1 × (3 + 5) tokens, one image, half of vLLM's GPU."""
    return {
        "trainer": {"nnodes": 1, "n_gpus_per_node": gpus},
        "data": {"max_prompt_length": 3, "max_response_length": 5},
        "actor_rollout_ref": {
            "actor": {"ppo_micro_batch_size_per_gpu": 1, "use_dynamic_bsz": dynamic, "ppo_max_token_len_per_gpu": 12,
                      "ulysses_sequence_parallel_size": 2 if dynamic else 1,
                      "fsdp_config": {"fsdp_size": -1, "model_dtype": dtype, "param_offload": offload,
                                      "optimizer_offload": offload}},
            "model": {"lora_rank": lora_rank, "target_modules": "all-linear"},
            "rollout": {"gpu_memory_utilization": 0.5, "limit_images": 1},
        },
    }  # fmt: skip


def test_each_piece_and_phase_by_hand() -> None:
    e = estimate(model_shape(TINY), run_config(), gpu_gib=1)
    assert (e.weights, e.gradients, e.optimizer) == (2068 * 4 / 2, 2068 * 4 / 2, 2 * 2068 * 4 / 2)  # fp32, 2 shards
    # 8 tokens; per token: layer inputs 2·8·2, one layer 2·(10·8 + 3·4 + 4·16), logits and gradient 4·10
    text = 8 * (32 + 312 + 40)
    # the image: CROP_MAX_PIXELS / 2² patches, / 2² tokens, at most the 8 tokens -> 32 patches of
    # 2·4·1 (block inputs) + 2·(10·4 + 4·6) bytes
    assert CROP_MAX_PIXELS // 4 // 4 > 8
    assert e.activations == text + 32 * (8 + 128) == 7424
    assert e.rollout == 0.5 * GIB
    assert e.phases == {
        "training": 4136 + 4136 + 7424 + 8272,
        "update": 4136 + 4136 + 8272,
        "rollout": 0.5 * GIB + 4136 + 8272,
    }
    assert e.peak == 0.5 * GIB + 4136 + 8272 and "fits" in e.lines()[1]


def test_offload_lora_dtype_and_dynamic_batches() -> None:
    offloaded = estimate(model_shape(TINY), run_config(offload=True), gpu_gib=1)
    assert offloaded.phases == {"training": 4136 + 4136 + 7424, "update": 4136 + 4136 + 8272, "rollout": 0.5 * GIB}
    # LoRA rank 2 on every decoder linear: 2·(16 + 12 + 12 + 16 + 24 + 24 + 24) per layer, 2 layers; bf16
    lora = estimate(model_shape(TINY), run_config(dtype="bf16", lora_rank=2), gpu_gib=1)
    assert (lora.weights, lora.gradients, lora.optimizer) == (2068 * 2 / 2, 512 * 2 / 2, 2 * 512 * 2 / 2)
    # dynamic batch size: ppo_max_token_len_per_gpu 12 over Ulysses 2 = 6 tokens, 24 patches
    dynamic = estimate(model_shape(TINY), run_config(dynamic=True), gpu_gib=1)
    assert dynamic.activations == 6 * (32 + 312 + 40) + 24 * 136
    one_gpu = estimate(model_shape(TINY), run_config(gpus=1), gpu_gib=1)
    assert one_gpu.weights == 2068 * 4


def test_the_7b_on_one_node_written_out() -> None:
    """The node-7b preset's shape: 8 GPUs, fp32, micro-batch 1 × (8192 + 16384) tokens, 12 images, vLLM 0.5 of 80."""
    cfg = run_config(gpus=8)
    cfg["data"] = {"max_prompt_length": 8192, "max_response_length": 16384}
    cfg["actor_rollout_ref"]["rollout"] = {"gpu_memory_utilization": 0.5, "limit_images": 12}
    e = estimate(model_shape(QWEN25VL_7B), cfg, gpu_gib=80)
    p = 8_292_166_656
    assert e.weights == p * 4 / 8 and e.optimizer == 2 * p * 4 / 8
    tokens = 24576
    per_token = 2 * 3584 * 28 + 2 * (10 * 3584 + 3 * 512 + 4 * 18944) + 4 * 152064  # 1,035,264 bytes
    patches = min(tokens, 12 * (2_000_000 // 14**2) // 4) * 4  # 12 views of 2,551 tokens > 24,576: capped
    per_patch = 2 * 1280 * 32 + 2 * (10 * 1280 + 4 * 3420)
    assert e.activations == tokens * per_token + patches * per_patch
    assert round(e.activations / GIB, 1) == 36.0 and round(e.peak / GIB, 1) == 51.6
