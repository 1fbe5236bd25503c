"""The one token estimate: synthesis sizes its requests with it, export checks rows against cutoff_len.

Both must count alike, or export would drop trajectories that synthesis fitted into its context budget.
The estimate is an upper bound for Qwen's tokenizer, because export uses it as a hard cutoff (a cut through
image tokens crashes training): ASCII digits and non-ASCII characters count one token each (Qwen splits
every digit), other text three characters a token (four would undercount punctuation-heavy text such as
the grounding JSON). Over-estimating only makes synthesis stop a little early, which costs nothing.
"""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 3
MESSAGE_OVERHEAD = 5  # <|im_start|> role \n ... <|im_end|> \n
VISION_MARKERS = 2  # <|vision_start|> and <|vision_end|> around an image's pads
PATCH_PIXELS = 28 * 28  # displayed pixels per image token (a merged 2x2 group of 14 px patches)


def text_tokens(text: str) -> int:
    """Tokens of plain text, from above."""
    digits = sum(map(text.count, "0123456789"))
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    single = digits + non_ascii
    return single + math.ceil((len(text) - single) / CHARS_PER_TOKEN)


def message_tokens(text: str) -> int:
    """Tokens of one chat message: its text plus the template around it."""
    return text_tokens(text) + MESSAGE_OVERHEAD


def image_tokens(width: int, height: int) -> int:
    """Tokens of one image displayed at width x height (exact for sizes on the 28 px grid)."""
    return max(1, math.ceil(width * height / PATCH_PIXELS)) + VISION_MARKERS
