"""The RL plug-ins one by one: the `<grounding>` parsers (the profile's reading of a turn), the zoom tool and its
per-trajectory session (ZoomEnv's crops and texts, the original decoded once), the image-token counting that
spares the rollout the pixel work, the chat template, and the first-answer rule."""

from __future__ import annotations

import asyncio
import itertools
import json
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from export_fixtures import write_image
from needs_verl import require_verl

from minio3_data.images import OriginalCache
from minio3_data.profiles import get_profile
from minio3_data.protocol import Answer, Malformed, Zoom, render_turn
from minio3_data.zoom import ZoomEnv
from train.rl.actions import from_arguments, to_arguments, tries_to_zoom
from train.rl.zoom_session import ZoomSession

ZOOM = render_turn("Look closer.", Zoom((0.1, 0.2, 0.6, 0.7)))
NESTED = render_turn("Closer still.", Zoom((0.25, 0.25, 0.75, 0.75), "observation_1"))
ANSWER = render_turn("Clear now.", Answer("B"))
RELEASED, MINIO3 = get_profile("released"), get_profile("minio3")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image(tmp_path_factory.mktemp("tool") / "scene.jpg", (1600, 1200))


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    require_verl()
    from tiny_qwen25vl import build_tokenizer

    from train.rl.chat_template import CHAT_TEMPLATE

    tok = build_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    return tok


def calls(tokenizer: Any, protocol: str, text: str) -> list[dict[str, Any]]:
    """The tool calls our registered parser finds in a generated turn (ids as the model would emit them)."""
    from verl.experimental.agent_loop.tool_parser import ToolParser

    from train.rl.parser import parser_name

    parser = ToolParser.get_tool_parser(parser_name(get_profile(protocol)), tokenizer)
    ids = [*tokenizer.encode(text, add_special_tokens=False), tokenizer.convert_tokens_to_ids("<|im_end|>")]
    content, found = asyncio.run(parser.extract_tool_calls(ids))
    assert content == text  # the end-of-turn token is not part of the turn's text
    assert all(c.name == "zoom" for c in found)
    return [json.loads(c.arguments) for c in found]


# --- the parsers --------------------------------------------------------------------------------------------


def test_parsers_read_a_turn_as_their_profile_does(tokenizer: Any) -> None:
    for protocol in ("released", "minio3"):
        assert calls(tokenizer, protocol, ZOOM) == [{"turn": ZOOM}]
        assert calls(tokenizer, protocol, NESTED) == [{"turn": NESTED}]
        assert calls(tokenizer, protocol, ANSWER) == []  # an answer ends the trajectory
    void = "<think>Probably blue.</think> B"
    assert calls(tokenizer, "released", void) == []  # released: a turn without an action ends it
    assert calls(tokenizer, "minio3", void) == [{"turn": void}]  # minio3: an error turn asks for an action
    both = '<think>x</think><answer>A</answer><grounding>{"bbox_2d": [0, 0, 0.5, 0.5], "source": "original_image"}'
    assert calls(tokenizer, "released", both) == [{"turn": both + "</grounding>"}]  # any grounding: a zoom
    assert calls(tokenizer, "minio3", both) == []  # minio3: the first complete action, the answer, wins
    refused = '<think>x</think>\n<grounding>{"bbox_2d":[0,0,1,1],"source":"original_image"}</grounding>'
    assert calls(tokenizer, "released", refused) == [{"turn": refused}]  # refused by the tool: an error turn


def test_the_tool_reads_the_turn_with_the_trajectorys_profile(image: Path) -> None:
    """What the released rollout does with what the model wrote: string coordinates crop, a compact grounding
    gets the exception text, a name eval cannot find its NameError."""
    session = ZoomSession(image, RELEASED, cache=OriginalCache())
    whole = session.step(0, '<think>x</think>\n<grounding>{"bbox_2d": ["0", "0", "1", "1"], "source": "original_image"}</grounding>')
    assert whole.image is not None and session.env.observations[-1].box == (0, 0, 1599, 1199)
    compact = session.step(1, '<think>x</think>\n<grounding>{"bbox_2d":[0,0,1,1],"source":"original_image"}</grounding>')
    assert compact.image is None and compact.text == RELEASED.error_text("'NoneType' object has no attribute 'group'")
    named = session.step(2, '<think>x</think>\n<grounding>{"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}</grounding>')
    assert named.text == RELEASED.error_text("name 'x0' is not defined")
    nested = session.step(3, render_turn("x", Zoom((0.0, 0.0, 0.5, 0.5), "observation_1")))
    assert nested.image is not None and nested.text == RELEASED.observation_text(3, 2)
    assert session.crops == 2 and session.errors == 2


def test_arguments_carry_the_turn() -> None:
    assert from_arguments(to_arguments(ZOOM)) == ZOOM
    assert from_arguments({"bbox_2d": [1, 2]}) == ""  # read by the profile as a turn with no action
    assert tries_to_zoom(Malformed("x"), "<grounding>{") and not tries_to_zoom(Malformed("no action"), "text")


# --- the session and the tool -------------------------------------------------------------------------------


def test_session_serves_zoomenv_crops_and_texts_and_decodes_the_original_once(image: Path) -> None:
    cache = OriginalCache()
    released = RELEASED
    zooms = [Zoom((0.1, 0.2, 0.6, 0.7)), Zoom((0.25, 0.25, 0.75, 0.75), "observation_1"), Zoom((0.5, 0.5, 0.9, 0.9))]
    for _ in range(3):  # three trajectories on one image (a group), one process-wide cache
        session = ZoomSession(image, RELEASED, cache=cache)
        reference = ZoomEnv(image, cache=OriginalCache(), protocol=RELEASED)
        assert np.array_equal(np.asarray(session.first_view()), np.asarray(reference.first_view().image))
        for t, zoom in enumerate(zooms):
            step = session.step(t, render_turn("Look.", zoom))
            expected = reference.step(zoom)
            assert step.image is not None and np.array_equal(np.asarray(step.image), np.asarray(expected.image))
            assert step.text == released.observation_text(t, expected.index)  # type: ignore[union-attr]
    full_decodes = [key for key in cache._items if key[-1] == "full"]
    assert len(full_decodes) == 1 and cache.misses == 1  # decoded once (its 1.9 MP first view is the original)
    bad = session.step(3, render_turn("Look.", Zoom((0.5, 0.5, 0.5, 0.9))))
    assert bad.image is None and bad.text == released.error_text(bad_width_message(image))
    assert session.crops == 3 and session.errors == 1


def bad_width_message(image: Path) -> str:
    """What the released profile tells a model about a zero-width box, from ZoomEnv itself."""
    env = ZoomEnv(image, cache=OriginalCache(), protocol=RELEASED)
    return env.step(Zoom((0.5, 0.5, 0.5, 0.9))).message  # type: ignore[union-attr]


def test_zoom_tool_answers_through_the_trajectorys_session(image: Path) -> None:
    require_verl()
    from train.rl.tool import SESSION_ATTR, ZoomTool

    session = ZoomSession(image, RELEASED, cache=OriginalCache())
    agent_data = types.SimpleNamespace(assistant_turns=2, **{SESSION_ATTR: session})
    tool = ZoomTool()
    zoom = to_arguments(render_turn("Look.", Zoom((0.1, 0.1, 0.5, 0.5))))
    response, reward, metrics = asyncio.run(tool.execute("id", zoom, agent_data=agent_data))
    assert response.image is not None and len(response.image) == 1 and metrics == {"zoomed": True} and reward == 0.0
    assert response.text == RELEASED.observation_text(1, 1)  # assistant turn index 1
    assert "<image>" in response.text  # where the chat template puts the crop
    refused = to_arguments('<think>Look.</think>\n<grounding>{"bbox_2d": [0.1, 0.2, 0.5], "source": "original_image"}</grounding>')
    response, _, metrics = asyncio.run(tool.execute("id", refused, agent_data=agent_data))
    assert response.image is None and response.text == RELEASED.error_text("") and not metrics["zoomed"]
    with pytest.raises(RuntimeError, match="minio3_zoom agent loop"):
        asyncio.run(tool.execute("id", zoom, agent_data=types.SimpleNamespace(assistant_turns=1)))


# --- token counting -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pixels", [(3136, 12845056), (28 * 28 * 4, 28 * 28 * 64)])
def test_counting_processor_gives_the_processors_ids(tokenizer: Any, pixels: tuple[int, int]) -> None:
    """Over many image sizes (tiny, elongated, large), with and without a size override, the ids equal the
    full processor's."""
    from PIL import Image
    from rl_stand_ins import ImageOnlyQwen25VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from train.rl.token_counting import counting_processor

    full = ImageOnlyQwen25VLProcessor(Qwen2VLImageProcessorPil(min_pixels=pixels[0], max_pixels=pixels[1]), tokenizer,
                                      tokenizer.chat_template)  # fmt: skip
    counting = counting_processor(full)
    assert counting is not full and counting.chat_template == full.chat_template
    sizes = [(28, 28), (29, 57), (56, 5000), (5000, 40), (333, 777), (1414, 1414), (2000, 1000), (900, 600)]
    text = "a <|vision_start|><|image_pad|><|vision_end|> b <|vision_start|><|image_pad|><|vision_end|>"
    for (w0, h0), (w1, h1) in itertools.pairwise(sizes):
        images = [Image.new("RGB", (w0, h0)), Image.new("RGB", (w1, h1))]
        for kwargs in ({}, {"max_pixels": 200_000}):  # a size override takes the processor's full path
            expected = full(text=[text], images=images, return_tensors="pt", **kwargs)["input_ids"][0].tolist()
            got = counting(text=[text], images=images, return_tensors="pt", **kwargs)["input_ids"][0]
            assert list(got) == expected, ((w0, h0), (w1, h1), kwargs)


# --- chat template and answers ------------------------------------------------------------------------------


def test_chat_template_renders_tool_turns_as_sft_user_turns(tokenizer: Any) -> None:
    messages = [
        {"role": "user", "content": [{"type": "image", "image": "x"}, {"type": "text", "text": "\nQ?"}]},
        {"role": "assistant", "content": ZOOM, "tool_calls": [{"type": "function", "function": {"name": "zoom", "arguments": {}}}]},
        {"role": "tool", "content": [{"type": "image", "image": "c"}, {"type": "text", "text": "See (Observation 1):\n<image>.\nGo on."}]},
        {"role": "tool", "content": "ERROR: source '<image>' is not an image name"},
    ]  # fmt: skip
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    span = "<|vision_start|><|image_pad|><|vision_end|>"
    assert text == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{span}\nQ?<|im_end|>\n"
        f"<|im_start|>assistant\n{ZOOM}<|im_end|>\n"
        f"<|im_start|>user\nSee (Observation 1):\n{span}.\nGo on.<|im_end|>\n"
        "<|im_start|>user\nERROR: source '<image>' is not an image name<|im_end|>\n"  # no image: left as text
        "<|im_start|>assistant\n"
    )


def test_first_answer_across_turns() -> None:
    quoted = "<think>Not <answer>A</answer> yet.</think>\n<answer>B</answer>"
    assert RELEASED.first_answer([ZOOM, ANSWER]) == "B" == MINIO3.first_answer([ZOOM, ANSWER])
    assert RELEASED.first_answer([quoted]) == "A"  # the release's reward: the first span anywhere
    assert MINIO3.first_answer([quoted]) == "B"  # minio3: the turn's action, not a tag quoted in thought
    zoom_then_text = ZOOM + " <answer>C</answer>"  # generation would have stopped at </grounding>
    assert RELEASED.first_answer([zoom_then_text]) is None
    assert RELEASED.first_answer([ZOOM]) is None and MINIO3.first_answer([]) is None
