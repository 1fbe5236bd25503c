"""`pixel-reasoner`: Pixel-Reasoner's evaluation rollout (TIGER-AI-Lab/Pixel-Reasoner at a3a6c3a,
`curiosity_driven_rl/openrlhf/trainer/ppo_utils/experience_maker.py`; reference/peer_conventions.md section 3).

What a checkpoint sees:
  - system: "You are a helpful assistant." and Qwen-Agent's Nous tool prompt over `crop_image_normalized` and
    `select_frames` (nous.py; the text reconstructed with Qwen-Agent's template, which the release leaves unpinned);
  - user: the first view, then the question and the `vcot` guidelines (TRIGGER);
  - a turn is a call only when it ends with `</tool_call>`; the last call of the turn is read with `json.loads`;
    `target_image` is 1-based over the images shown so far (a Python index below that: 0 is the last image);
    four values all under 1 are relative, else pixels of the target; each side padded by 0.1 and clamped to
    [0, 1]; the float box rounded as Pillow's crop rounds it; refused unless both sides exceed 28 px;
  - crops are cut from the displayed first view (smart_resize(28, 256*784, 8000*784)) and shown at
    smart_resize(28, 256*784, 5120*784), BICUBIC, after the text "\\nHere is the cropped image (Image Size: WxH):";
  - any failure is the user turn "\\nExecution error:\\n{message}\\n" and the loop goes on;
  - a turn that is not a call ends the rollout; the answer is the last `\\boxed{}` (the whole turn without one).
  - the assistant's own bytes stay in the history; greedy, 2,048 new tokens a turn, a 12,288-token context.
Differences kept on purpose (docs/conventions.md): a crop of a crop is cut from the first view with the composed
box (the release re-crops the displayed crop, whose size differs from the box's by the resize); the first view is
resized LANCZOS here, BICUBIC by qwen-vl-utils; the fifth call ends the release's rollout and is over-turn here
(run `minio3 eval --max-turns 5`); its reward reads the last `boxed` of the whole solution (`first_answer`), our
judge the answer turn's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from ..display import DisplayRule, PixelBox, SmartSize, SmartSteps
from ..protocol import (
    IMAGE_PLACEHOLDER, Action, Answer, Malformed, Void, Zoom, is_number, question_text, source_index, source_name,
)
from .base import EVAL_ONLY, ProtocolProfile, ReleaseLimits
from .nous import CALL_CLOSE, CALL_OPEN, image_index, tools_prompt

CROP_TOOL = "crop_image_normalized"
CROP_DESC = (
    '{"type": "function", "function": {"name": "crop_image_normalized", "description": "Zoom in on the image based '
    'on the bounding box coordinates. It is useful when the object or text in the image is too small to be seen.", '
    '"parameters": {"type": "object", "properties": {"bbox_2d": {"type": "array", "description": "coordinates for '
    'bounding box of the area you want to zoom in. Values should be within [0.0,1.0].", "items": {"type": '
    '"number"}}, "target_image": {"type": "number", "description": "The index of the image to crop. Index from 1 to '
    'the number of images. Choose 1 to operate on original image."}}, "required": ["bbox_2d", "target_image"]}}}'
)
FRAMES_DESC = (
    '{"type": "function", "function": {"name": "select_frames", "description": "Select frames from a video.", '
    '"parameters": {"type": "object", "properties": {"target_frames": {"type": "array", "description": "List of '
    'frame indices to select from the video (no more than 8 frames in total).", "items": {"type": "integer", '
    '"description": "Frame index from 1 to 16."}}}, "required": ["target_frames"]}}}'
)
SYSTEM_PROMPT = tools_prompt([CROP_DESC, FRAMES_DESC], "You are a helpful assistant.")
TRIGGER = (  # f"\n\n{templates['vcot']}" (prompts_dataset.py), vcot itself starting with two newlines
    "\n\n\n\nGuidelines: Understand the given visual information and the user query. Determine if it is beneficial "
    "to employ the given visual operations (tools). For a video, we can look closer by `select_frames`. For an "
    "image, we can look closer by `crop_image`. Reason with the visual information step by step, and put your "
    "final answer within \\boxed{}."
)
OBSERVATION_TEMPLATE = "\nHere is the cropped image (Image Size: {width}x{height}):{image}"
ERROR_TEMPLATE = "\nExecution error:\n{message}\n"
BAD_TARGET = (
    "Execution Error: Incorrect `target_image` argument in `crop_image_normalized` operation. You can only pick an "
    "image within [1,{n}]"
)
BOXED = "\\boxed{"
PADDING = 0.1
MIN_SIDE = 28  # a crop must exceed it on both sides
PIXELS = 28 * 28
DISPLAY = DisplayRule(  # eval: fetch_image 256..8000 x 784 for the first view, resize_cropped 256..5120 x 784
    "pixel-reasoner", SmartSize(), SmartSteps(), Image.Resampling.BICUBIC, exact=True,
    first_max_pixels=8000 * PIXELS, crop_min_pixels=256 * PIXELS, crop_max_pixels=5120 * PIXELS,
)  # fmt: skip


def last_boxed(text: str) -> str | None:
    """The inside of the last `\\boxed{...}`, braces matched (to the end of the text when unclosed)."""
    start = text.rfind(BOXED)
    if start < 0:
        return None
    depth, i = 1, start + len(BOXED)
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return text[i:]


def _key(obj: object, key: str) -> object:
    """obj[key] as the release reads it: a missing key is a KeyError, whose message is the key's repr."""
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(repr(key))
    return obj[key]


def _target(value: object, num_observations: int | None) -> int:
    """`target_image - 1` as a Python list index into the images so far (a negative one counts from the end)."""
    if not is_number(value):
        raise ValueError(f"unsupported operand type(s) for -: '{type(value).__name__}' and 'int'")
    if isinstance(value, float):
        raise ValueError("list indices must be integers or slices, not float")
    return image_index(value - 1, num_observations)


@dataclass(frozen=True)
class PixelReasonerProfile(ProtocolProfile):
    """Pixel-Reasoner's rollout (module docstring)."""
    stages: frozenset[str] = EVAL_ONLY  # docs/conventions.md says why synthesis, export and RL are not offered

    def question_turn(self, question: str, options: Sequence[str]) -> str:
        return IMAGE_PLACEHOLDER + question_text(question, list(options)) + TRIGGER

    def trim_turn(self, text: str) -> str:
        """Generation ends only at the end of the turn: nothing to cut."""
        return text

    def parse_turn(self, text: str, num_observations: int | None = None) -> Action:
        """A turn ending with `</tool_call>` is its last call, or the error it raises; any other turn the answer."""
        if not text.endswith(CALL_CLOSE):
            answer = last_boxed(text)
            answer = (text if answer is None else answer).strip()
            return Answer(answer) if answer else Void("an empty turn: no call and no answer")
        try:
            call = json.loads(text.split(CALL_OPEN)[-1].split(CALL_CLOSE)[0])
            if _key(call, "name") != CROP_TOOL:
                raise ValueError(f"only {CROP_TOOL} operates on an image")
            args = _key(call, "arguments")
            index = _target(_key(args, "target_image"), num_observations)
            bbox = _key(args, "bbox_2d")
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(v) for v in bbox):
                raise ValueError(f"bbox_2d must hold four numbers, got {json.dumps(bbox)}")
        except ValueError as e:  # json.JSONDecodeError is one: its message is the release's
            return Malformed(str(e))
        return Zoom(tuple(bbox), source_name(index))  # type: ignore[arg-type]  # as written: relative or pixels

    def resolve_source(self, source: str) -> int:
        return source_index(source)

    def missing_source(self, source: str, num_observations: int) -> str:
        return BAD_TARGET.format(n=num_observations + 1)

    def box_on_source(self, bbox: tuple, size: tuple[int, int]) -> PixelBox | str:
        """CropImageNormalized.call: relative when all four are under 1, else pixels; padded by 0.1, clamped to
        [0, 1], scaled back and rounded as Pillow's crop rounds; both sides must exceed 28 px."""
        w, h = size
        x0, y0, x1, y1 = bbox
        if not all(v < 1 for v in bbox):
            x0, y0, x1, y1 = x0 / w, y0 / h, x1 / w, y1 / h
        padded = (x0 - PADDING, y0 - PADDING, x1 + PADDING, y1 + PADDING)
        nx0, ny0, nx1, ny1 = (min(1.0, max(0.0, v)) for v in padded)
        try:
            box = round(nx0 * w), round(ny0 * h), round(nx1 * w), round(ny1 * h)
        except ValueError as e:  # nan
            return str(e)
        if box[2] < box[0]:
            return "Coordinate 'right' is less than 'left'"
        if box[3] < box[1]:
            return "Coordinate 'lower' is less than 'upper'"
        cw, ch = box[2] - box[0], box[3] - box[1]
        if not (cw > MIN_SIDE and ch > MIN_SIDE):
            return f"Cropped image is too small: {cw}x{ch}"
        return box

    def stored_turn(self, text: str, action: Zoom | Answer) -> str:
        """The model's own bytes: the release keeps them in the history."""
        return text

    def first_answer(self, turns: Sequence[str]) -> str | None:
        """The release's reward reads the last `boxed` of everything the policy wrote."""
        return last_boxed("".join(turns))


PROFILE = PixelReasonerProfile(
    name="pixel-reasoner",
    summary="Pixel-Reasoner's crop_image_normalized: target_image, 0.1 padding, crops of the displayed first view",
    system_prompt=SYSTEM_PROMPT,
    observation_template=OBSERVATION_TEMPLATE,
    error_template=ERROR_TEMPLATE,
    display=DISPLAY,
    stop_strings=(),
    limits=ReleaseLimits(turn_tokens=2048, context_tokens=12 * 1024, context_reserve=200),
    crops_first_view=True,
)
