"""`qwen2.5-vl`: Qwen2.5-VL (and Qwen2-VL, the same processor and template), what Mini-o3 was trained from.

Facts (reference/qwen3vl.md, reference/llamafactory.md): patch 14 x merge 2 = a 28 px factor; stock processor
bounds 3,136 to 12,845,056 px (Qwen2.5-VL-7B-Instruct's preprocessor_config.json); LLaMA-Factory 0.9.5's
template `qwen2_vl`, whose default system prompt is "You are a helpful assistant.".
"""

from __future__ import annotations

from .base import ModelFamily, SftVariant

FAMILY = ModelFamily(
    name="qwen2.5-vl",
    summary="Qwen2.5-VL, 28 px per token side (Mini-o3's base)",
    model_types=("qwen2_5_vl", "qwen2_vl"),
    architectures=("Qwen2_5_VLForConditionalGeneration", "Qwen2VLForConditionalGeneration"),
    patch_size=14,
    merge_size=2,
    max_pixels=12_845_056,
    stock_min_pixels=3_136,
    variants=(SftVariant("instruct", "qwen2_vl", "Qwen/Qwen2.5-VL-7B-Instruct"),),
    default_system="You are a helpful assistant.",
    slug="qwen2_5_vl",
)
