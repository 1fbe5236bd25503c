"""Build a tiny random-weight Qwen2.5-VL (model + tokenizer + processor) offline, for LLaMA-Factory smoke tests.

Runs with the LLaMA-Factory venv's python (it needs torch + transformers, which minio3 itself never imports):
    <venv>/bin/python tests/tiny_qwen25vl.py OUT_DIR
The RL tests import `build_tokenizer`, `model_config` and `IMAGE_PIXELS` in the `rl` extra's environment for a
weightless copy (the rollout never runs the model).
Nothing is downloaded: the tokenizer is a byte-level BPE trained here on a few hundred lines, so its
special tokens and ids follow the Qwen2 layout the qwen2_vl template and plugin expect.
"""

from __future__ import annotations

import sys
from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip
PLAIN_ADDED_TOKENS = [
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
]
QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def training_text() -> list[str]:
    """A few hundred lines that look like zoom trajectories, so BPE learns the common pieces."""
    words = [
        "the",
        "a",
        "sign",
        "red",
        "blue",
        "zoom",
        "image",
        "region",
        "observation",
        "action",
        "answer",
        "think",
        "grounding",
        "source",
        "original",
    ]
    lines = []
    for i in range(300):
        w = " ".join(words[(i + k) % len(words)] for k in range(8))
        lines.append(
            f'{w} {{"bbox_2d": [0.{i % 10}, 0.{(i * 3) % 10}, 0.9, 0.8], "source": "observation_{i % 4}"}}'
        )
        lines.append(
            f"After the above Action {i % 5}, here is the zoom-in image (Observation {i % 5 + 1}). {w}"
        )
    return lines


def build_tokenizer():
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        training_text(),
        trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in PLAIN_ADDED_TOKENS])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


IMAGE_PIXELS = {"min_pixels": 28 * 28 * 4, "max_pixels": 28 * 28 * 64}  # the image processor's smart_resize range
ARCHITECTURE = "Qwen2_5_VLForConditionalGeneration"


def model_config(tokenizer):
    """The tiny Qwen2.5-VL config (2 layers, hidden 64), its special-token ids taken from `tokenizer`."""
    from transformers import Qwen2_5_VLConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
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
    """Model, tokenizer and processor. Without torchvision (the `rl` extra's environment) the video processor
    cannot be built: the image processor's PIL backend is saved instead, which is all verl's rollout and
    `train-rl --dry-run` read."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor, Qwen2VLImageProcessorPil

    tokenizer = build_tokenizer()
    tokenizer.chat_template = CHAT_TEMPLATE
    out.mkdir(parents=True, exist_ok=True)
    try:
        from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

        Qwen2_5_VLProcessor(
            image_processor=Qwen2VLImageProcessor(**IMAGE_PIXELS),
            tokenizer=tokenizer,
            video_processor=Qwen2VLVideoProcessor(),
            chat_template=CHAT_TEMPLATE,
        ).save_pretrained(out)
    except ImportError:
        Qwen2VLImageProcessorPil(**IMAGE_PIXELS).save_pretrained(out)
    torch.manual_seed(0)
    Qwen2_5_VLForConditionalGeneration(model_config(tokenizer)).to(torch.float32).save_pretrained(out)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: tiny_qwen25vl.py OUT_DIR")
    build(Path(sys.argv[1]))
