"""How many tokens LLaMA-Factory will build for one row, estimated from above.

LLaMA-Factory truncates at `cutoff_len`, and a cut through image tokens crashes training ("Image features
and image tokens do not match"), so rows that may not fit are excluded before writing. Image tokens are
computed exactly as LLaMA-Factory 0.9.5 + the Qwen2-VL processor do (pixel caps, then smart_resize);
text is estimated conservatively for Qwen's tokenizer, which splits every digit into its own token.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from minio3_data.images import smart_resize

# The stock Qwen2.5-VL processor bounds (preprocessor_config.json); LLaMA-Factory's own caps come first.
PROCESSOR_MIN_PIXELS = 56 * 56
PROCESSOR_MAX_PIXELS = 28 * 28 * 16384
VISION_MARKERS = 2  # <|vision_start|> and <|vision_end|> around the pads
MESSAGE_OVERHEAD = 5  # <|im_start|> role \n ... <|im_end|> \n
CHARS_PER_TOKEN = 3


def lf_image_size(width: int, height: int, max_pixels: int, min_pixels: int) -> tuple[int, int]:
    """The size LLaMA-Factory's Qwen2VLPlugin hands to the image processor (its `_preprocess_image`)."""
    w, h = width, height
    if w * h > max_pixels:
        f = math.sqrt(max_pixels / (w * h))
        w, h = int(w * f), int(h * f)
    if w * h < min_pixels:
        f = math.sqrt(min_pixels / (w * h))
        w, h = int(w * f), int(h * f)
    if min(w, h) < 28:
        w, h = max(w, 28), max(h, 28)
    if w / h > 200:
        w = h * 180
    if h / w > 200:
        h = w * 180
    return w, h


def image_tokens(width: int, height: int, max_pixels: int, min_pixels: int) -> int:
    """Tokens one image becomes in the qwen2_vl template: one pad per 28x28 patch group, plus the markers."""
    w, h = lf_image_size(width, height, max_pixels, min_pixels)
    gh, gw = smart_resize(h, w, min_pixels=PROCESSOR_MIN_PIXELS, max_pixels=PROCESSOR_MAX_PIXELS)
    return (gh // 28) * (gw // 28) + VISION_MARKERS


def text_tokens(text: str) -> int:
    """An upper estimate for Qwen's BPE: ASCII digits and non-ASCII characters one token each, other text
    three characters a token."""
    digits = sum(map(text.count, "0123456789"))
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    single = digits + non_ascii
    return single + math.ceil((len(text) - single) / CHARS_PER_TOKEN)


def row_tokens(
    messages: Iterable[str], image_sizes: Iterable[tuple[int, int]], max_pixels: int, min_pixels: int
) -> int:
    """Estimated sequence length of one conversation (the `<image>` placeholders replaced by image tokens)."""
    text = sum(text_tokens(m.replace("<image>", "")) + MESSAGE_OVERHEAD for m in messages)
    return text + sum(image_tokens(w, h, max_pixels, min_pixels) for w, h in image_sizes)
