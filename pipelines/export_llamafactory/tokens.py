"""How many tokens LLaMA-Factory will build for one row, estimated from above.

LLaMA-Factory truncates at `cutoff_len`, and a cut through image tokens crashes training ("Image features
and image tokens do not match"), so rows that may not fit are excluded before writing. Image tokens are
computed exactly as LLaMA-Factory 0.9.5 + the Qwen2-VL processor do (pixel caps, then smart_resize);
text is counted with minio3_data.tokens, the estimate synthesis sizes its requests with.
"""

from __future__ import annotations

from collections.abc import Iterable

from minio3_data import tokens as estimate
from minio3_data.display import scale_into, smart_resize

# The stock Qwen2.5-VL processor bounds (preprocessor_config.json); LLaMA-Factory's own caps come first.
PROCESSOR_MIN_PIXELS = 56 * 56
PROCESSOR_MAX_PIXELS = 28 * 28 * 16384


def lf_image_size(width: int, height: int, max_pixels: int, min_pixels: int) -> tuple[int, int]:
    """The size LLaMA-Factory's Qwen2VLPlugin hands to the image processor (its `_preprocess_image`)."""
    w, h = scale_into(width, height, max_pixels, min_pixels)
    if min(w, h) < 28:
        w, h = max(w, 28), max(h, 28)
    if w / h > 200:
        w = h * 180
    if h / w > 200:
        h = w * 180
    return w, h


def image_tokens(width: int, height: int, max_pixels: int, min_pixels: int) -> int:
    """Tokens one image becomes in the qwen2_vl template, at the size the processor resizes it to."""
    w, h = lf_image_size(width, height, max_pixels, min_pixels)
    gh, gw = smart_resize(h, w, min_pixels=PROCESSOR_MIN_PIXELS, max_pixels=PROCESSOR_MAX_PIXELS)
    return estimate.image_tokens(gw, gh)


def row_tokens(
    messages: Iterable[str], image_sizes: Iterable[tuple[int, int]], max_pixels: int, min_pixels: int
) -> int:
    """Estimated sequence length of one conversation (the `<image>` placeholders replaced by image tokens)."""
    text = sum(estimate.message_tokens(m.replace("<image>", "")) for m in messages)
    return text + sum(image_tokens(w, h, max_pixels, min_pixels) for w, h in image_sizes)
