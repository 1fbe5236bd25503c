"""What the tiny offline Qwen-VL models (tests/tiny_qwen25vl.py, tests/tiny_qwen3vl.py) share: the tokenizer, a
byte-level BPE trained here on a few hundred zoom-trajectory-like lines, with Qwen's special tokens, so that its
ids follow the layout LLaMA-Factory's Qwen-VL templates and plugins and verl's rollout expect; and the image
processor, transformers' Qwen2-VL one for both families. Nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip
QWEN2_SPLIT = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# the video processor's settings, from the model config's vision_config
VIDEO_KEYS = {"patch_size": "patch_size", "merge_size": "spatial_merge_size", "temporal_patch_size": "temporal_patch_size"}
WORDS = ["the", "a", "sign", "red", "blue", "zoom", "image", "region", "observation", "action", "answer", "think",
         "grounding", "source", "original"]  # fmt: skip


def training_text(box: Callable[[int], str]) -> list[str]:
    """A few hundred lines that look like zoom trajectories (`box(i)`: the i-th line's bbox_2d, in the model's
    coordinate frame), so BPE learns the common pieces."""
    lines = []
    for i in range(300):
        w = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(8))
        lines.append(f'{w} {{"bbox_2d": {box(i)}, "source": "observation_{i % 4}"}}')
        lines.append(f"After the above Action {i % 5}, here is the zoom-in image (Observation {i % 5 + 1}). {w}")
    return lines


def build_tokenizer(plain_tokens: list[str], box: Callable[[int], str], **options: Any) -> Any:
    """The fast tokenizer: BPE on training_text(box), Qwen's special tokens, then `plain_tokens` (added, not
    special); `options` go to PreTrainedTokenizerFast."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
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
        training_text(box),
        trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()),
    )
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in plain_tokens])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", **options)
    fast.chat_template = CHAT_TEMPLATE
    return fast


def special_ids(tokenizer: Any) -> dict[str, int]:
    """The special tokens' ids, which a model config names."""
    return {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}


def image_processor(pixels: dict[str, int], pil: bool = False, **options: Any) -> Any:
    """transformers' Qwen2-VL image processor (every Qwen-VL family's) bounded by `pixels` (min_pixels,
    max_pixels), `options` its family's settings; `pil` (or no torchvision): its PIL backend."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    kwargs = {**options, "size": {"shortest_edge": pixels["min_pixels"], "longest_edge": pixels["max_pixels"]}}
    if pil:
        return Qwen2VLImageProcessorPil(**kwargs)
    try:
        from transformers import Qwen2VLImageProcessor

        return Qwen2VLImageProcessor(**kwargs)
    except ImportError:
        return Qwen2VLImageProcessorPil(**kwargs)


def save(out: Path, tokenizer: Any, config: Any, image_processor: Callable[[bool], Any], names: tuple[str, str, str]) -> None:
    """Save a tiny model: `config` with random weights, `tokenizer`, and the processor. `names`: transformers'
    processor, video processor and model classes. Without torchvision the video processor cannot be built and
    the image processor's PIL backend (`image_processor(True)`) is saved alone, which is all verl's rollout and
    `train-rl --dry-run` read."""
    import torch
    import transformers

    processor_class, video_class, model_class = names
    out.mkdir(parents=True, exist_ok=True)
    try:
        video = getattr(transformers, video_class)(**{k: getattr(config.vision_config, a) for k, a in VIDEO_KEYS.items()})
    except ImportError:
        image_processor(True).save_pretrained(out)
    else:
        getattr(transformers, processor_class)(image_processor=image_processor(False), tokenizer=tokenizer,
                                               video_processor=video, chat_template=CHAT_TEMPLATE).save_pretrained(out)  # fmt: skip
    torch.manual_seed(0)
    getattr(transformers, model_class)(config).to(torch.float32).save_pretrained(out)
    tokenizer.save_pretrained(out)
