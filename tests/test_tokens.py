"""One token estimate: what synthesis fits into its context budget, export counts alike against cutoff_len."""

from __future__ import annotations

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


def test_image_estimate_is_one_token_per_28px_patch_plus_the_vision_markers() -> None:
    assert image_tokens(28, 28) == 1 + 2
    assert image_tokens(1008, 756) == 36 * 27 + 2
    assert image_tokens(1, 1) == 1 + 2


def test_a_conversation_synthesis_fits_in_its_budget_fits_export_by_the_same_count() -> None:
    size = (1008, 756)  # on the 28 px grid and inside the pixel caps: export keeps the displayed size
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
    estimate = estimate_prompt_tokens(messages)
    assert estimate == row_tokens(exported, [size, size], 2_000_000, 40_000)
    assert estimate > 2 * (36 * 27 + 2)
