"""Build a tiny random-weight Qwen2.5-VL (model + tokenizer + processor) offline, for LLaMA-Factory smoke tests.

Runs with the LLaMA-Factory venv's python (it needs torch + transformers, which minio3 itself never imports):
    <venv>/bin/python tests/tiny_qwen25vl.py OUT_DIR
The RL tests import `build_tokenizer`, `model_config` and `IMAGE_PIXELS` in the `rl` extra's environment for a
weightless copy (the rollout never runs the model).
Nothing is downloaded: the tokenizer (tests/tiny_qwen_parts.py, shared with tests/tiny_qwen3vl.py) is a
byte-level BPE trained here, its special tokens and ids in the Qwen2 layout the qwen2_vl template and plugin expect.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tiny_qwen_parts
from tiny_qwen_parts import special_ids

PLAIN_ADDED_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"]


def build_tokenizer():
    """The tiny tokenizer, trained on relative (0-1) boxes as Qwen2.5-VL's trajectories write them."""
    return tiny_qwen_parts.build_tokenizer(
        PLAIN_ADDED_TOKENS, lambda i: f"[0.{i % 10}, 0.{(i * 3) % 10}, 0.9, 0.8]"
    )


IMAGE_PIXELS = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 64}  # the image processor's smart_resize range
ARCHITECTURE = "Qwen2_5_VLForConditionalGeneration"


def image_processor(pixels: dict[str, int], pil: bool = False):
    """Qwen2.5-VL's image processor (transformers' Qwen2-VL one, its defaults) bounded by `pixels`."""
    return tiny_qwen_parts.image_processor(pixels, pil)


def model_config(tokenizer):
    """The tiny Qwen2.5-VL config (2 layers, hidden 64), its special-token ids taken from `tokenizer`."""
    from transformers import Qwen2_5_VLConfig

    ids = special_ids(tokenizer)
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
            "bos_token_id": ids["<|endoftext|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    config.architectures = [ARCHITECTURE]
    return config


def build(out: Path) -> None:
    """Model, tokenizer and processor (tests/tiny_qwen_parts.py `save`)."""
    tokenizer = build_tokenizer()
    tiny_qwen_parts.save(out, tokenizer, model_config(tokenizer), lambda pil: image_processor(IMAGE_PIXELS, pil),
                         ("Qwen2_5_VLProcessor", "Qwen2VLVideoProcessor", "Qwen2_5_VLForConditionalGeneration"))  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tiny_qwen25vl.py OUT_DIR")
    build(Path(sys.argv[1]))
