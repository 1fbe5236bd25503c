"""`qwen3-vl`: Qwen3-VL (dense and MoE), Instruct and Thinking.

Facts (reference/qwen3vl.md, checked in transformers 5.x, LLaMA-Factory 0.9.5 and verl 0.9.1): patch 16 x
merge 2 = a 32 px factor; the same image processor class and smart_resize as Qwen2.5-VL; stock bounds 65,536 to
16,777,216 px (Qwen3-VL-8B-Instruct's preprocessor_config.json). The stock minimum would enlarge every crop
under 65,536 px (the released rule shows them from 40,000 px), so SFT and RL run the processor with
`min_pixels` = 4 x 32 x 32 = 4,096 (ModelFamily.min_pixels) and the crop stays the one the protocol chose.
LLaMA-Factory 0.9.5's templates: `qwen3_vl_nothink` for Instruct, `qwen3_vl` for Thinking (it adds an empty
think block to an assistant turn without one; ours all have one); neither has a default system prompt.
"""

from __future__ import annotations

from .base import ModelFamily, SftVariant

FAMILY = ModelFamily(
    name="qwen3-vl",
    summary="Qwen3-VL, 32 px per token side, Instruct or Thinking",
    model_types=("qwen3_vl", "qwen3_vl_moe"),
    architectures=("Qwen3VLForConditionalGeneration", "Qwen3VLMoeForConditionalGeneration"),
    patch_size=16,
    merge_size=2,
    max_pixels=16_777_216,
    stock_min_pixels=65_536,
    variants=(
        SftVariant("instruct", "qwen3_vl_nothink", "Qwen/Qwen3-VL-8B-Instruct"),
        SftVariant("thinking", "qwen3_vl", "Qwen/Qwen3-VL-8B-Thinking"),
    ),
    default_system=None,
    slug="qwen3_vl",
)
