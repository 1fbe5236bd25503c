"""The one token estimate: synthesis and eval size their requests with it, export checks rows against cutoff_len.

All must count alike, or export would drop trajectories that synthesis fitted into its context budget.
Text is estimated from above for Qwen's tokenizer, because export uses the estimate as a hard cutoff (a cut
through image tokens crashes training): ASCII digits and non-ASCII characters count one token each (Qwen splits
every digit), other text three characters a token (four would undercount punctuation-heavy text such as
the grounding JSON). Over-estimating only makes synthesis stop a little early, which costs nothing.
Images are counted exactly as the model family's processor counts them (ModelFamily.image_tokens).
"""

from __future__ import annotations

import math

from .families import DEFAULT, VISION_MARKERS, ModelFamily

CHARS_PER_TOKEN = 3
MESSAGE_OVERHEAD = 5  # <|im_start|> role \n ... <|im_end|> \n


def text_tokens(text: str) -> int:
    """Tokens of plain text, from above."""
    digits = sum(map(text.count, "0123456789"))
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    single = digits + non_ascii
    return single + math.ceil((len(text) - single) / CHARS_PER_TOKEN)


def message_tokens(text: str) -> int:
    """Tokens of one chat message: its text plus the template around it."""
    return text_tokens(text) + MESSAGE_OVERHEAD


def image_tokens(width: int, height: int, family: ModelFamily = DEFAULT) -> int:
    """Tokens of one image displayed at width x height to a model of `family`; an aspect ratio its processor
    refuses (over 200, which an API teacher may still take) by its area."""
    try:
        return family.image_tokens(width, height)
    except ValueError:
        return max(1, math.ceil(width * height / family.factor**2)) + VISION_MARKERS
