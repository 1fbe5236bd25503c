"""Every rule a row must pass before it is written, and the token estimate behind the length rule."""

from __future__ import annotations

import pytest

from pipelines.export_llamafactory.tokens import image_tokens, lf_image_size, row_tokens
from pipelines.export_llamafactory.validate import Limits, check_row

LIMITS = Limits(cutoff_len=32768, image_max_pixels=2_000_000, image_min_pixels=40_000)
SIZE = (640, 480)


def turn(role: str, value: str) -> dict[str, str]:
    return {"from": role, "value": value}


def good() -> list[dict[str, str]]:
    return [
        turn("system", "You zoom."),
        turn("human", "<image>\nWhat is it?"),
        turn(
            "gpt",
            '<think>t</think>\n<grounding>{"bbox_2d": [0, 0, 1, 1], "source": "original_image"}</grounding>',
        ),
        turn("human", "After the above Action 0, here is the zoom-in image (Observation 1):\n<image>."),
        turn("gpt", "<think>t</think>\n<answer>A</answer>"),
    ]


def reason(conversations: object, n_images: int = 2, limits: Limits = LIMITS) -> str | None:
    problem, _ = check_row(conversations, [SIZE] * n_images, limits)
    return problem.reason if problem else None


def test_a_well_formed_row_passes_with_a_token_estimate() -> None:
    problem, tokens = check_row(good(), [SIZE, SIZE], LIMITS)
    assert problem is None
    assert tokens == row_tokens([m["value"] for m in good()], [SIZE, SIZE], 2_000_000, 40_000) > 2 * 392


def test_the_system_turn_is_optional() -> None:
    assert reason(good()[1:]) is None


@pytest.mark.parametrize(
    "conversations",
    [
        [],
        "not a list",
        [turn("human", "<image>q"), {"from": "gpt"}],
        [turn("human", "<image>q"), {"from": "gpt", "value": 3}],
    ],
)
def test_malformed_conversations_are_refused(conversations: object) -> None:
    assert reason(conversations, 1) == "bad conversations"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c: c[:-1],  # ends with a human turn
        lambda c: [c[0], c[1], c[1], *c[2:]],  # two human turns in a row
        lambda c: [c[0], c[2], c[1], *c[3:]],  # gpt first
        lambda c: [*c[:2], turn("observation", c[3]["value"]), *c[3:]],  # tag outside human/gpt
        lambda c: [*c[:3], turn("system", "late system"), *c[3:]],  # system not first
        lambda c: c[:1],  # only a system turn
    ],
)
def test_role_order_violations_are_refused(mutate) -> None:  # type: ignore[no-untyped-def]
    conversations = mutate(good())
    n_images = sum(m["value"].count("<image>") for m in conversations)
    assert reason(conversations, n_images) == "role order"


def test_an_empty_turn_is_refused() -> None:
    conversations = good()
    conversations[2]["value"] = "  "
    assert reason(conversations) == "empty turn"


@pytest.mark.parametrize("n_images", [1, 3])
def test_placeholder_count_must_match_images(n_images: int) -> None:
    assert reason(good(), n_images) == "image count"


def test_a_placeholder_in_the_teachers_own_text_is_caught() -> None:
    conversations = good()
    conversations[2]["value"] = "<think>the <image> shows a sign</think>\n<answer>A</answer>"
    assert reason(conversations) == "image count"


def test_a_placeholder_in_the_system_turn_is_refused() -> None:
    conversations = good()
    conversations[0]["value"] = "Look at <image>"
    assert reason(conversations, 3) == "image count"


@pytest.mark.parametrize("text", ["<video>", "<audio>"])
def test_other_media_placeholders_are_refused(text: str) -> None:
    conversations = good()
    conversations[4]["value"] += text
    assert reason(conversations) == "placeholder"


@pytest.mark.parametrize("token", ["<|image_pad|>", "<|vision_start|>", "<|im_end|>"])
def test_special_tokens_typed_as_text_are_refused(token: str) -> None:
    conversations = good()
    conversations[2]["value"] = f"<think>{token}</think><answer>A</answer>"
    assert reason(conversations) == "special token"


def test_rows_longer_than_cutoff_are_refused_and_the_boundary_is_inclusive() -> None:
    _, tokens = check_row(good(), [SIZE, SIZE], LIMITS)
    assert reason(good(), limits=Limits(tokens, 2_000_000, 40_000)) is None
    problem, _ = check_row(good(), [SIZE, SIZE], Limits(tokens - 1, 2_000_000, 40_000))
    assert problem is not None and problem.reason == "too long" and str(tokens) in problem.detail


def test_image_tokens_match_llamafactory_on_the_documented_cases() -> None:
    # llamafactory.md section 3: with image_max_pixels 12544, 320x240 -> 15 pads and 100x80 -> 12 pads
    assert image_tokens(320, 240, 12544, 3136) == 15 + 2
    assert image_tokens(100, 80, 12544, 3136) == 12 + 2


def test_lf_image_size_caps_and_raises_like_llamafactory() -> None:
    assert lf_image_size(4000, 3000, 2_000_000, 40_000) == (1632, 1224)  # int() of sqrt scaling
    w, h = lf_image_size(50, 40, 2_000_000, 40_000)
    assert 39_000 < w * h <= 40_000  # upscaled to min_pixels, truncated
    assert lf_image_size(2000, 5, 2_000_000, 100) == (2000, 28)  # short side forced to 28
    assert lf_image_size(10000, 28, 10**9, 1) == (28 * 180, 28)  # aspect > 200 squeezed like Qwen2VLPlugin


def test_a_2mp_image_costs_about_pixels_over_784_tokens() -> None:
    tokens = image_tokens(1632, 1224, 2_000_000, 40_000)
    assert abs(tokens - 1632 * 1224 / 784) < 60
