"""Build a tiny random-weight Qwen3-VL (model + tokenizer + processor) offline, for the LLaMA-Factory and RL tests.

Runs with the LLaMA-Factory venv's python (it needs torch + transformers, which minio3 itself never imports):
    <venv>/bin/python tests/tiny_qwen3vl.py OUT_DIR [--stock-pixels]
`--stock-pixels` gives its image processor the real Qwen3-VL-8B's bounds (65,536 to 16,777,216 px) instead of
tiny ones, so that tests see what minio3 does with a real checkpoint's processor. The RL tests import
`build_tokenizer`, `model_config` and `image_processor` in the `rl` extra's environment for a weightless copy.
The tokenizer is tests/tiny_qwen_parts.py's (shared with tests/tiny_qwen25vl.py), trained on boxes written
as Qwen3-VL writes them (0-1000 integers), with Qwen3-VL's added tokens in its order.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import tiny_qwen_parts
from tiny_qwen_parts import special_ids

PLAIN_ADDED_TOKENS = [
    "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
]  # fmt: skip
PATCH, MERGE, TEMPORAL_PATCH = 16, 2, 2
FACTOR = PATCH * MERGE
IMAGE_PIXELS = {"min_pixels": FACTOR * FACTOR * 4, "max_pixels": FACTOR * FACTOR * 64}  # tiny, for fast tests
STOCK_PIXELS = {"min_pixels": 65_536, "max_pixels": 16_777_216}  # Qwen3-VL-8B-Instruct's preprocessor_config.json
ARCHITECTURE = "Qwen3VLForConditionalGeneration"


def build_tokenizer() -> Any:
    return tiny_qwen_parts.build_tokenizer(
        PLAIN_ADDED_TOKENS, lambda i: f"[{i % 1000}, {(i * 3) % 1000}, 900, 800]", model_max_length=262_144,
        clean_up_tokenization_spaces=False,
    )  # fmt: skip


def model_config(tokenizer: Any) -> Any:
    """Two text layers (hidden 64, head_dim 16, interleaved M-RoPE as the real model), a two-block ViT with patch
    16, merge 2 and one DeepStack merger; the special-token ids taken from `tokenizer`."""
    from transformers import Qwen3VLConfig

    ids = special_ids(tokenizer)
    config = Qwen3VLConfig(
        text_config={
            "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 32768,
            "rope_parameters": {"rope_type": "default", "rope_theta": 5e6, "mrope_section": [4, 2, 2],
                                "mrope_interleaved": True},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"], "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": PATCH,
            "spatial_merge_size": MERGE, "temporal_patch_size": TEMPORAL_PATCH, "out_hidden_size": 64,
            "num_position_embeddings": 64, "deepstack_visual_indexes": [1],
        },
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )  # fmt: skip
    config.architectures = [ARCHITECTURE]
    return config


def image_processor(pixels: dict[str, int], pil: bool = False) -> Any:
    """Qwen3-VL's image processor: transformers' Qwen2-VL one with Qwen3-VL's patch, merge and normalisation."""
    return tiny_qwen_parts.image_processor(pixels, pil, patch_size=PATCH, merge_size=MERGE,
                                           temporal_patch_size=TEMPORAL_PATCH, image_mean=[0.5] * 3, image_std=[0.5] * 3)  # fmt: skip


def build(out: Path, pixels: dict[str, int] = IMAGE_PIXELS) -> None:
    """Model, tokenizer and processor (tests/tiny_qwen_parts.py `save`), the image processor bounded by `pixels`."""
    tokenizer = build_tokenizer()
    tiny_qwen_parts.save(out, tokenizer, model_config(tokenizer), lambda pil: image_processor(pixels, pil),
                         ("Qwen3VLProcessor", "Qwen3VLVideoProcessor", "Qwen3VLForConditionalGeneration"))  # fmt: skip


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--stock-pixels"]
    if len(args) != 1:
        sys.exit("usage: tiny_qwen3vl.py OUT_DIR [--stock-pixels]")
    build(Path(args[0]), STOCK_PIXELS if "--stock-pixels" in sys.argv else IMAGE_PIXELS)
