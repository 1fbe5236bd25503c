"""How many tokens LLaMA-Factory will build for one row, estimated from above.

LLaMA-Factory truncates at `cutoff_len`, and a cut through image tokens crashes training ("Image features
and image tokens do not match"), so rows that may not fit are excluded before writing. Image tokens are
computed exactly as LLaMA-Factory 0.9.5 and the model family's processor do: LLaMA-Factory's own pixel caps
and 28 px minimum side (Qwen3VLPlugin inherits Qwen2VLPlugin's), then the processor's smart_resize with the
family's factor and the bounds training runs it with (ModelFamily.min_pixels / max_pixels; train-sft sees to
them); text is counted with minio3_data.tokens, the estimate synthesis sizes its requests with.
"""

from __future__ import annotations

from collections.abc import Iterable

from minio3_data import tokens as estimate
from minio3_data.display import scale_into
from minio3_data.families import DEFAULT, ModelFamily

LF_MIN_SIDE = 28  # Qwen2VLPlugin._preprocess_image, for every Qwen-VL family
LF_MAX_ASPECT, LF_SQUEEZED_ASPECT = 200, 180  # a view over 1:200 is squeezed to 1:180 there


def lf_image_size(width: int, height: int, max_pixels: int, min_pixels: int) -> tuple[int, int]:
    """The size LLaMA-Factory's Qwen2VLPlugin hands to the image processor (its `_preprocess_image`)."""
    w, h = scale_into(width, height, max_pixels, min_pixels)
    if min(w, h) < LF_MIN_SIDE:
        w, h = max(w, LF_MIN_SIDE), max(h, LF_MIN_SIDE)
    if w / h > LF_MAX_ASPECT:
        w = h * LF_SQUEEZED_ASPECT
    if h / w > LF_MAX_ASPECT:
        h = w * LF_SQUEEZED_ASPECT
    return w, h


def image_tokens(width: int, height: int, max_pixels: int, min_pixels: int, family: ModelFamily = DEFAULT) -> int:
    """Tokens one image becomes in the family's LLaMA-Factory template, at the size its processor resizes it to."""
    return family.image_tokens(*lf_image_size(width, height, max_pixels, min_pixels))


def row_tokens(
    messages: Iterable[str], image_sizes: Iterable[tuple[int, int]], max_pixels: int, min_pixels: int,
    family: ModelFamily = DEFAULT,
) -> int:  # fmt: skip
    """Estimated sequence length of one conversation (the `<image>` placeholders replaced by image tokens)."""
    text = sum(estimate.message_tokens(m.replace("<image>", "")) for m in messages)
    return text + sum(image_tokens(w, h, max_pixels, min_pixels, family) for w, h in image_sizes)
