"""One token estimate: what synthesis fits into its context budget, export counts alike against cutoff_len, for
each model family."""

from __future__ import annotations

import pytest

from minio3_data.families import FAMILIES, get_family
from minio3_data.teachers.base import ImageRef, Message
from minio3_data.teachers.limits import estimate_prompt_tokens
from minio3_data.tokens import image_tokens, message_tokens, text_tokens
from pipelines.export_llamafactory.tokens import row_tokens

GROUNDING = (
    "<think>left</think>\n"
    '<grounding>{"bbox_2d": [0.1, 0.2, 0.5, 0.7], "source": "original_image"}</grounding>'
)


def test_text_estimate_counts_digits_and_non_ascii_one_each_other_text_three_chars_a_token() -> None:
    assert text_tokens("") == 0
    assert text_tokens("abcdef") == 2
    assert text_tokens("abcdefg") == 3  # rounded up: an upper bound
    assert text_tokens("0.123456") == 7 + 1  # seven digits, one '.'
    assert text_tokens("图像") == 2
    assert message_tokens("abcdef") == 2 + 5  # the chat template around every message


def test_image_estimate_is_the_familys_processor_count_plus_the_vision_markers() -> None:
    qwen3 = get_family("qwen3-vl")
    assert image_tokens(28, 28) == 4 + 2  # enlarged to 56 x 56, the processor's four-token minimum
    assert image_tokens(1008, 756) == 36 * 27 + 2
    assert image_tokens(1, 1) == 4 + 2
    assert image_tokens(1008, 756, qwen3) == 32 * 24 + 2  # 1008/32 = 31.5 rounds to 32, 756/32 = 23.6 to 24
    assert image_tokens(200, 200, qwen3) == 6 * 6 + 2  # rounded down to 192 x 192: 36, not the area's 40
    assert image_tokens(240, 240, qwen3) == 8 * 8 + 2  # rounded up to 256 x 256: 64, not the area's 57
    assert image_tokens(30000, 60) == 2296 + 2  # a 1:500 view the processor refuses: by its area, 1,800,000 / 784


@pytest.mark.parametrize("name", list(FAMILIES))
def test_a_conversation_synthesis_fits_in_its_budget_fits_export_by_the_same_count(name: str) -> None:
    family = get_family(name)
    size = (1008, 756)  # inside the pixel caps: export keeps the displayed size
    image = ImageRef(b"jpeg", width=size[0], height=size[1])
    messages = [
        Message("system", ["You search images by zooming. Answer with one letter."]),
        Message("user", [image, "What color is the small star? A. red B. blue"]),
        Message("assistant", [GROUNDING]),
        Message("user", ["Observation 1:", image]),
        Message("assistant", ["<think>blue, 图像</think>\n<answer>B</answer>"]),
    ]
    exported = [
        "You search images by zooming. Answer with one letter.",
        "<image>What color is the small star? A. red B. blue",
        GROUNDING,
        "Observation 1:<image>",
        "<think>blue, 图像</think>\n<answer>B</answer>",
    ]
    estimate = estimate_prompt_tokens(messages, family)
    assert estimate == row_tokens(exported, [size, size], 2_000_000, 40_000, family)
    assert estimate > 2 * image_tokens(*size, family)
