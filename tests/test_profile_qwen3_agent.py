"""`qwen3-agent`: a loopback Qwen3-VL policy speaking Qwen-Agent's `image_zoom_in_tool` through a real
`minio3 eval --protocol qwen3-agent`. Every expectation comes from reference/peer_conventions.md section 5 (the
prompt's literal bytes, the 0-1000 frame, maybe_resize_bbox, smart_resize with factor 32), worked by hand below,
never from our own output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loopback_teacher import RequestView
from peer_eval import KITE, avg_at_k, dataset, image_sizes, kite_trajectory, question_of, run, turn_of

from minio3_data.profiles import get_profile
from minio3_data.protocol import Answer, Malformed, Void, Zoom

PROFILE = get_profile("qwen3-agent")

SYSTEM = (  # Qwen-Agent's FN_CALL_TEMPLATE around the tool's description, as the reference quotes both
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function "
    "signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name": "image_zoom_in_tool", "description": "Zoom in on a specific region of '
    'an image by cropping it based on a bounding box (bbox) and an optional object label", "parameters": {"type": '
    '"object", "properties": {"bbox_2d": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": '
    '4, "description": "The bounding box of the region to zoom in, as [x1, y1, x2, y2], where (x1, y1) is the '
    'top-left corner and (x2, y2) is the bottom-right corner"}, "label": {"type": "string", "description": "The '
    'name or label of the object in the specified bounding box"}, "img_idx": {"type": "number", "description": "The '
    'index of the zoomed-in image (starting from 0)"}}, "required": ["bbox_2d", "label", "img_idx"]}}}'
    "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n'
    "</tool_call>"
)


def call(bbox: list[float], idx: int, label: str = "kite") -> str:
    """A call as a model writes it: compact JSON, no newlines (Qwen-Agent reads it and re-serialises it)."""
    args = json.dumps({"bbox_2d": bbox, "label": label, "img_idx": idx}, separators=(",", ":"))
    return f"I need a closer look.<tool_call>{{\"name\":\"image_zoom_in_tool\",\"arguments\":{args}}}</tool_call>"


# The kite trajectory on a 1000x1000 original, one call per turn, with what Qwen-Agent's tool gives for each:
#   t0 [250,200,750,600] of image 0: 250.0..750.0 x 200.0..600.0, no side under 32 -> box (250,200,750,600), 500x400;
#      smart_resize(32): round(400/32)=12 (12.5 to even), round(500/32)=16 -> 384x512 = 196,608 < 262,144, so
#      beta = sqrt(262144/200000) = 1.14487: ceil(400*1.14487/32)=15 -> 480, ceil(500*1.14487/32)=18 -> 576: 576x480
#   t1 [500,500,510,505]: 500..510 x 500..505, h = 5 < 32: centre (505, 502.5), ratio 32/5 = 6.4, half sizes
#      ceil(5*6.4/2)=16 and ceil(10*6.4/2)=32 -> floor(502.5-16)=486, ceil(502.5+16)=519, 473, 537: 64x33, both
#      sides > 32, used; smart_resize: 32x64 -> 2,048 px, beta = sqrt(262144/2112) = 11.141:
#      ceil(33*11.141/32)=12 -> 384, ceil(64*11.141/32)=23 -> 736: 736x384
#   t2 [500,500,510,504]: h = 4, centre (505, 502) a whole pixel: grown to exactly 32 x 80, not > 32, so the
#      10x4 box is kept (the release's rule); smart_resize: beta = sqrt(262144/40) = 80.95:
#      ceil(4*80.95/32)=11 -> 352, ceil(10*80.95/32)=26 -> 832: 832x352
#   t3 [0,0,1000,1000] of img_idx -1, the last image (the t2 crop): the whole crop again, 832x352
#   t4 img_idx 9: no such image -> an error turn; t5 the answer
KITE_TURNS = [
    call([250, 200, 750, 600], 0), call([500, 500, 510, 505], 0), call([500, 500, 510, 504], 0),
    call([0, 0, 1000, 1000], -1), call([0, 0, 10, 10], 9), "<think>It is clearly red.</think>\n\nred",
]  # fmt: skip
KITE_BOXES = [[250, 200, 750, 600], [473, 486, 537, 519], [500, 500, 510, 504], [500, 500, 510, 504], None, None]
KITE_SHOWN = [(576, 480), (736, 384), (832, 352), (832, 352)]
KITE_SOURCES = ["original_image", "original_image", "original_image", "observation_3", "observation_9", None]


def policy(view: RequestView) -> str:
    """Plays KITE_TURNS on the kite question and answers the sign question at once."""
    return KITE_TURNS[turn_of(view)] if question_of(view) == KITE else "dog"


def test_eval_speaks_qwen_agent_and_gets_its_crops_and_scores(tmp_path: Path) -> None:
    out = tmp_path / "run"
    requests = run("qwen3-agent", policy, dataset(tmp_path / "data", (1000, 1000)), out, "1,5,6")

    # the kite: 6 requests, the last one holding the whole conversation as Qwen-Agent renders it
    assert len(requests) == 2 * 6
    messages = requests[-1]
    assert messages[0] == {"role": "system", "content": SYSTEM}
    first = messages[1]["content"]
    assert [p["type"] for p in first] == ["image_url", "text"] and first[1]["text"] == KITE  # image, then question
    assert messages[2]["content"] == (
        'I need a closer look.\n<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [250, 200, 750, '
        '600], "label": "kite", "img_idx": 0}}\n</tool_call>'
    )  # the call re-serialised, a newline after the text before it
    assert [p.get("text") for p in messages[3]["content"]] == ["<tool_response>\n", None, "\n</tool_response>"]
    assert messages[10]["content"] == (
        'I need a closer look.\n<tool_call>\n{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [0, 0, 10, 10], '
        '"label": "kite", "img_idx": 9}}\n</tool_call>'
    )  # a call the tool refuses is still a call
    assert messages[11]["content"] == (
        "<tool_response>\nTool Execution Error list index out of range: img_idx 9, but the conversation has 5 "
        "image(s)\n</tool_response>"
    )
    assert image_sizes(messages) == [(1000, 1000), *KITE_SHOWN]  # the original at full resolution first

    kite = kite_trajectory(out)
    assert [t["box_px"] for t in kite["turns"]] == KITE_BOXES
    assert [t["source"] for t in kite["turns"]] == KITE_SOURCES
    assert kite["final_answer"] == "red" and kite["status"] == "answered"
    # Avg@2 by budget: the sign is right at every budget; the kite only once it has its sixth turn
    assert avg_at_k(out) == {"protocol": "qwen3-agent", "1": 0.5, "5": 0.5, "6": 1.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (call([100, 200, 300, 400], 0), Zoom((0.1, 0.2, 0.3, 0.4), "original_image")),
        (call([100, 200, 300, 400], 2), Zoom((0.1, 0.2, 0.3, 0.4), "observation_2")),
        (call([100, 200, 300, 400], 3), Zoom((0.1, 0.2, 0.3, 0.4), "observation_3")),  # the tool refuses it
        (call([100, 200, 300, 400], -1), Zoom((0.1, 0.2, 0.3, 0.4), "observation_2")),  # the last image
        ("<tool_call>\n{'name': 'image_zoom_in_tool', 'arguments': {'bbox_2d': [0, 0, 500, 500], 'label': 'a', "
         "'img_idx': 0,},}\n</tool_call>", Zoom((0.0, 0.0, 0.5, 0.5), "original_image")),
        ('<tool_call>{"name": "crop", "arguments": {}}</tool_call>', Malformed("Tool crop does not exists.")),
        ("The answer is B.", Answer("The answer is B.")),
        ("<think>hmm</think>\n\n", Void("an empty turn: no call and no answer")),
    ],
)  # fmt: skip
def test_calls_are_read_as_qwen_agent_reads_them(text: str, expected: object) -> None:
    assert PROFILE.parse_turn(PROFILE.trim_turn(text), num_observations=2) == expected
