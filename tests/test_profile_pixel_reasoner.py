"""`pixel-reasoner`: a loopback policy speaking Pixel-Reasoner's `crop_image_normalized` through a real
`minio3 eval --protocol pixel-reasoner`. Every expectation comes from reference/peer_conventions.md section 3 (the
prompts' literal bytes, the must-end-the-turn rule, 0.1 padding, smart_resize(28) on the displayed first view),
worked by hand below, never from our own output."""

from __future__ import annotations

from pathlib import Path

import pytest
from loopback_teacher import RequestView
from peer_eval import KITE, avg_at_k, dataset, image_sizes, kite_trajectory, question_of, run, turn_of

from minio3_data.profiles import get_profile
from minio3_data.protocol import Answer, Malformed, Zoom

PROFILE = get_profile("pixel-reasoner")

SYSTEM = (  # section 3.2, verbatim
    'You are a helpful assistant.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n'
    'You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{"type": "function", '
    '"function": {"name": "crop_image_normalized", "description": "Zoom in on the image based on the bounding box '
    'coordinates. It is useful when the object or text in the image is too small to be seen.", "parameters": {"type": '
    '"object", "properties": {"bbox_2d": {"type": "array", "description": "coordinates for bounding box of the area '
    'you want to zoom in. Values should be within [0.0,1.0].", "items": {"type": "number"}}, "target_image": {"type": '
    '"number", "description": "The index of the image to crop. Index from 1 to the number of images. Choose 1 to '
    'operate on original image."}}, "required": ["bbox_2d", "target_image"]}}}\n{"type": "function", "function": '
    '{"name": "select_frames", "description": "Select frames from a video.", "parameters": {"type": "object", '
    '"properties": {"target_frames": {"type": "array", "description": "List of frame indices to select from the video '
    '(no more than 8 frames in total).", "items": {"type": "integer", "description": "Frame index from 1 to 16."}}}, '
    '"required": ["target_frames"]}}}\n</tools>\n\nFor each function call, return a json object with function name '
    'and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
    "<args-json-object>}\n</tool_call>"
)
TRIGGER = (  # section 3.2, verbatim
    "\n\n\n\nGuidelines: Understand the given visual information and the user query. Determine if it is beneficial to "
    "employ the given visual operations (tools). For a video, we can look closer by `select_frames`. For an image, we "
    "can look closer by `crop_image`. Reason with the visual information step by step, and put your final answer "
    "within \\boxed{}."
)


def call(bbox: list[float], target: int) -> str:
    args = f'{{"bbox_2d": {bbox}, "target_image": {target}}}'
    return f'Zoom in.\n<tool_call>\n{{"name": "crop_image_normalized", "arguments": {args}}}\n</tool_call>'


# A 1000x800 original; its first view: smart_resize(28, 256*784, 8000*784): round(800/28)=29 -> 812,
# round(1000/28)=36 -> 1008: 1008x812 (818,496 px, in range). Crops are cut from it:
#   t0 [0.4,0.4,0.6,0.6] (all < 1: relative) of image 1: padded 0.3..0.7 -> 0.3*1008=302.4, 0.3*812=243.6,
#      705.6, 568.4, rounded (302,244,706,568): 404x324; smart_resize(28, 200,704, 4,014,080): 12*28 x 14*28 =
#      336x392 = 131,712 px < 200,704, beta = sqrt(200704/130896) = 1.2383: ceil(324*1.2383/28)=15 -> 420,
#      ceil(404*1.2383/28)=18 -> 504: shown 504x420
#   t1 [400,300,600,500] (not all < 1: pixels) of image 1: 400/1008-0.1 -> 299.2, 300/812-0.1 -> 218.8,
#      600/1008+0.1 -> 700.8, 500/812+0.1 -> 581.2: (299,219,701,581), 402x362; 13*28 x 14*28 = 142,688 px,
#      beta = sqrt(200704/145524) = 1.1744: ceil(362*1.1744/28)=16 -> 448, ceil(402*1.1744/28)=17 -> 476: 476x448
#   t2 target_image 5 of 3 images: the error turn
#   t3 a turn that does not end with </tool_call>: the answer, its last \boxed{}
KITE_TURNS = [
    call([0.4, 0.4, 0.6, 0.6], 1), call([400, 300, 600, 500], 1), call([0.1, 0.1, 0.2, 0.2], 5),
    "Now it is clear: \\boxed{red}",
]  # fmt: skip
KITE_BOXES = [[302, 244, 706, 568], [299, 219, 701, 581], None, None]
# the sign: a call that does not end the turn is no call
SIGN_TURN = call([0.1, 0.1, 0.2, 0.2], 1) + "\nNo need: it is a \\boxed{dog}."


def policy(view: RequestView) -> str:
    return KITE_TURNS[turn_of(view)] if question_of(view).startswith(KITE) else SIGN_TURN


def test_eval_speaks_pixel_reasoner_and_gets_its_crops_and_scores(tmp_path: Path) -> None:
    out = tmp_path / "run"
    requests = run("pixel-reasoner", policy, dataset(tmp_path / "data", (1000, 800)), out, "1,3,4")

    assert len(requests) == 2 * 4
    messages = requests[-1]
    assert messages[0] == {"role": "system", "content": SYSTEM}
    first = messages[1]["content"]
    assert [p["type"] for p in first] == ["image_url", "text"] and first[1]["text"] == KITE + TRIGGER
    assert messages[2]["content"] == KITE_TURNS[0]  # the model's own bytes
    assert [p.get("text") for p in messages[3]["content"]] == [
        "\nHere is the cropped image (Image Size: 504x420):", None
    ]
    assert messages[5]["content"][0]["text"] == "\nHere is the cropped image (Image Size: 476x448):"
    assert messages[7]["content"] == (
        "\nExecution error:\nExecution Error: Incorrect `target_image` argument in `crop_image_normalized` "
        "operation. You can only pick an image within [1,3]\n"
    )
    assert image_sizes(messages) == [(1008, 812), (504, 420), (476, 448)]

    kite = kite_trajectory(out)
    assert [t["box_px"] for t in kite["turns"]] == KITE_BOXES
    assert kite["final_answer"] == "red" and kite["status"] == "answered"
    assert avg_at_k(out) == {"protocol": "pixel-reasoner", "1": 0.5, "3": 0.5, "4": 1.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (call([0.1, 0.2, 0.3, 0.4], 2), Zoom((0.1, 0.2, 0.3, 0.4), "observation_1")),
        (call([0.1, 0.2, 0.3, 0.4], 0), Zoom((0.1, 0.2, 0.3, 0.4), "observation_2")),  # index -1: the last image
        (call([0.1, 0.2, 0.3, 0.4], 1) + "\n", Answer(call([0.1, 0.2, 0.3, 0.4], 1))),  # does not end the turn
        ("<tool_call>{'name': 'crop_image_normalized'}</tool_call>",
         Malformed("Expecting property name enclosed in double quotes: line 1 column 2 (char 1)")),  # json.loads
        ('<tool_call>{"name": "crop_image_normalized", "arguments": {"bbox_2d": [0, 0, 1, 1]}}</tool_call>',
         Malformed("'target_image'")),
        ("first \\boxed{A} then \\boxed{\\frac{1}{2}}", Answer("\\frac{1}{2}")),
    ],
)  # fmt: skip
def test_calls_are_read_as_pixel_reasoner_reads_them(text: str, expected: object) -> None:
    assert PROFILE.parse_turn(PROFILE.trim_turn(text), num_observations=2) == expected


@pytest.mark.parametrize(
    ("bbox", "size", "expected"),
    [
        ((0.45, 0.45, 0.55, 0.55), (100, 100), (35, 35, 65, 65)),  # padded to 0.35..0.65: 30 px > 28
        ((0.5, 0.5, 0.5, 0.5), (100, 100), "Cropped image is too small: 20x20"),  # padded to 20 px, not > 28
        # 1.0 is not < 1, so all four are pixels: 1/1008 + 0.1 -> 101.8, 1/812 + 0.1 -> 82.2
        ((0.0, 0.0, 1.0, 1.0), (1008, 812), (0, 0, 102, 82)),
    ],
)  # fmt: skip
def test_boxes_are_padded_and_checked_as_the_release_does(bbox: tuple, size: tuple[int, int], expected: object) -> None:
    assert PROFILE.box_on_source(bbox, size) == expected
