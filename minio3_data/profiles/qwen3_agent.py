"""`qwen3-agent`: Qwen3-VL thinking with images through Qwen-Agent's `image_zoom_in_tool`.

Source: QwenLM/Qwen-Agent at 31a4d36, `qwen_agent/tools/image_zoom_in_qwen3vl.py` (`ImageZoomInToolQwen3VL`) and
`NousFnCallPrompt` (reference/peer_conventions.md section 5). What a checkpoint sees, as Qwen-Agent sends it:
  - system: the Nous tool prompt alone (no system message of the user's; nous.py), the tool described verbatim;
  - user: the original image at full resolution, then the question (no text between them);
  - a call: `<tool_call>{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [x1, y1, x2, y2], "label": ..,
    "img_idx": i}}</tool_call>`, all three arguments required; the box in integers 0-1000 of the image `img_idx`
    names, 0-based over every image of the conversation (0: the original, k: the k-th crop; a negative index
    counts from the end, as a Python list does); the history keeps the call re-serialised (nous.history_turn);
  - the crop: k/1000 of the source's side as floats, clamped to the image; a side under 32 px grown about the
    centre (ceil half sizes, floor/ceil edges), the grown box used only when both its sides exceed 32 px (so a
    box whose centre is a whole pixel keeps its size: the release's rule, reproduced); the float box rounded as
    Pillow's `crop` rounds it; then smart_resize (factor 32, 262,144..12,845,056 px), BICUBIC;
  - the result: a user turn `<tool_response>\\n` + image + `\\n</tool_response>`; a refusal the same with the text
    `Tool Execution Error {message}`;
  - a turn without a call ends the run: its text (after a `</think>`) is the answer, free text.
Differences kept on purpose (docs/conventions.md):
  - a turn's first call runs (Qwen-Agent runs every call of a turn); the history keeps the text before it and it;
  - a crop of a crop is cut from the original with the composed box (DESIGN invariant 2); Qwen-Agent re-crops its
    saved resized PNG, so a nested crop's box and grow-to-32 rule act on other pixel counts, and its pixels are
    resampled twice there; the shown size follows the integer crop (Qwen-Agent smart-resizes the float box's
    sides, so where a side straddles half a factor the two differ by 32 px);
  - images travel as JPEG (Qwen-Agent saves PNG); refusal messages are ours (Qwen-Agent's name its file paths
    or a jsonschema error), and a crop elongated past 1:200 is refused, where Qwen-Agent would show it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

from ..display import MAX_ASPECT, DisplayRule, PixelBox, SmartSteps, unchanged_size
from ..protocol import (
    IMAGE_PLACEHOLDER, Action, Answer, Malformed, Void, Zoom, is_number, question_text, source_index, source_name,
)
from .base import EVAL_ONLY, ProtocolProfile, ReleaseLimits
from .frame import PER_MILLE
from .nous import CALL_CLOSE, CALL_OPEN, history_turn, image_index, load_call, tools_prompt

TOOL = "image_zoom_in_tool"
TOOL_DESC = (  # the tool's schema as the Nous prompt renders it (json.dumps of name, description, parameters)
    '{"type": "function", "function": {"name": "image_zoom_in_tool", "description": "Zoom in on a specific region '
    'of an image by cropping it based on a bounding box (bbox) and an optional object label", "parameters": '
    '{"type": "object", "properties": {"bbox_2d": {"type": "array", "items": {"type": "number"}, "minItems": 4, '
    '"maxItems": 4, "description": "The bounding box of the region to zoom in, as [x1, y1, x2, y2], where (x1, y1) '
    'is the top-left corner and (x2, y2) is the bottom-right corner"}, "label": {"type": "string", "description": '
    '"The name or label of the object in the specified bounding box"}, "img_idx": {"type": "number", '
    '"description": "The index of the zoomed-in image (starting from 0)"}}, "required": ["bbox_2d", "label", '
    '"img_idx"]}}}'
)
SYSTEM_PROMPT = tools_prompt([TOOL_DESC])
OBSERVATION_TEMPLATE = "<tool_response>\n{image}\n</tool_response>"
ERROR_TEMPLATE = "<tool_response>\nTool Execution Error {message}\n</tool_response>"
THINK_END = "</think>"

MIN_SIDE = 32  # maybe_resize_bbox: a side under this is grown about the centre
FACTOR = 32
CROP_MIN_PIXELS = 256 * FACTOR * FACTOR
CROP_MAX_PIXELS = 12_845_056
QWEN3_CONTEXT = 262_144  # Qwen3-VL's native context; Qwen-Agent sets no per-turn limit

DISPLAY = DisplayRule(
    "qwen3-agent", unchanged_size, SmartSteps(FACTOR), Image.Resampling.BICUBIC, exact=True,
    crop_min_pixels=CROP_MIN_PIXELS, crop_max_pixels=CROP_MAX_PIXELS,
)  # fmt: skip


def _numbers(value: object) -> bool:
    return isinstance(value, list) and len(value) == 4 and all(
        is_number(v) and math.isfinite(v) for v in value
    )


def grown(left: float, top: float, right: float, bottom: float, width: int, height: int) -> tuple[float, ...]:
    """maybe_resize_bbox: clamped to the image; a side under MIN_SIDE grown about the centre to MIN_SIDE (each
    half size ceiled, the edges floored and ceiled, clamped again), kept only when both grown sides exceed it."""
    left, top, right, bottom = max(0, left), max(0, top), min(width, right), min(height, bottom)
    h, w = bottom - top, right - left
    if (h < MIN_SIDE or w < MIN_SIDE) and min(h, w) > 0:
        cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
        ratio = MIN_SIDE / min(h, w)
        half_h, half_w = math.ceil(h * ratio * 0.5), math.ceil(w * ratio * 0.5)
        new = (
            max(0, math.floor(cx - half_w)), max(0, math.floor(cy - half_h)),
            min(width, math.ceil(cx + half_w)), min(height, math.ceil(cy + half_h)),
        )  # fmt: skip
        if new[3] - new[1] > MIN_SIDE and new[2] - new[0] > MIN_SIDE:
            return new
    return left, top, right, bottom


@dataclass(frozen=True)
class Qwen3AgentProfile(ProtocolProfile):
    """Qwen-Agent's zoom tool for Qwen3-VL (module docstring)."""
    stages: frozenset[str] = EVAL_ONLY  # docs/conventions.md says why synthesis, export and RL are not offered

    def question_turn(self, question: str, options: Sequence[str]) -> str:
        """The user's message: the image, then the question."""
        return IMAGE_PLACEHOLDER + question_text(question, list(options))

    def trim_turn(self, text: str) -> str:
        """Generation ends at the end of the turn; the text after the first call's `</tool_call>` is dropped."""
        start = text.find(CALL_OPEN)
        end = text.find(CALL_CLOSE, start)
        return text[: end + len(CALL_CLOSE)] if start >= 0 and end >= 0 else text

    def parse_turn(self, text: str, num_observations: int | None = None) -> Action:
        """The first call is a zoom or the error it gets; a turn without one is the answer (void when empty).
        A call naming an image that does not exist is a zoom: the tool refuses it, the call stays in the history."""
        start = text.find(CALL_OPEN)
        if start < 0:
            answer = text.split(THINK_END)[-1].strip()
            return Answer(answer) if answer else Void("an empty turn: no call and no answer")
        inner = text[start + len(CALL_OPEN) :].split(CALL_CLOSE)[0]
        try:
            return self._zoom(*load_call(inner), num_observations)
        except ValueError as e:
            return Malformed(str(e))

    def _zoom(self, name: str, arguments: dict, num_observations: int | None) -> Zoom:
        if name != TOOL:
            raise ValueError(f"Tool {name} does not exists.")
        missing = [key for key in ("bbox_2d", "label", "img_idx") if key not in arguments]
        if missing:
            raise ValueError(f"Parameters {', '.join(missing)} required: bbox_2d, label and img_idx")
        if not _numbers(arguments["bbox_2d"]):
            raise ValueError("bbox_2d must be four numbers [x1, y1, x2, y2] from 0 to 1000")
        index = arguments["img_idx"]
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError("list indices must be integers or slices, not " + type(index).__name__)
        index = image_index(index, num_observations)
        bbox = tuple(PER_MILLE.canonical(v) for v in arguments["bbox_2d"])
        return Zoom(bbox, source_name(index))  # type: ignore[arg-type]  # a missing image is the tool's error

    def resolve_source(self, source: str) -> int:
        return source_index(source)

    def missing_source(self, source: str, num_observations: int) -> str:
        images = num_observations + 1
        return f"list index out of range: img_idx {source_index(source)}, but the conversation has {images} image(s)"

    def box_on_source(self, bbox: tuple, size: tuple[int, int]) -> PixelBox | str:
        """k/1000 of the source's sides, grown (`grown`), rounded as Pillow's crop rounds a float box."""
        w, h = size
        box = grown(bbox[0] * w, bbox[1] * h, bbox[2] * w, bbox[3] * h, w, h)
        x0, y0, x1, y1 = (round(v) for v in box)
        if x1 <= x0 or y1 <= y0:
            shown = [PER_MILLE.written(v) for v in bbox]
            return f"the box {shown} is empty on the {w}x{h} image: x2 must exceed x1 and y2 y1"
        if max(x1 - x0, y1 - y0) / min(x1 - x0, y1 - y0) > MAX_ASPECT:
            ratio = max(x1 - x0, y1 - y0) / min(x1 - x0, y1 - y0)
            return f"absolute aspect ratio must be smaller than {MAX_ASPECT}, got {ratio}"
        return x0, y0, x1, y1

    def stored_turn(self, text: str, action: Zoom | Answer) -> str:
        """A call as Qwen-Agent keeps it in the history (nous.history_turn); an answer as written."""
        start = text.find(CALL_OPEN)
        if start < 0:
            return text
        name, arguments = load_call(text[start + len(CALL_OPEN) :].split(CALL_CLOSE)[0])
        return history_turn(text[:start], name, arguments)


PROFILE = Qwen3AgentProfile(
    name="qwen3-agent",
    summary="Qwen3-VL with Qwen-Agent's image_zoom_in_tool: 0-1000 boxes, img_idx, <tool_response> observations",
    system_prompt=SYSTEM_PROMPT,
    observation_template=OBSERVATION_TEMPLATE,
    error_template=ERROR_TEMPLATE,
    display=DISPLAY,
    stop_strings=(),
    limits=ReleaseLimits(context_tokens=QWEN3_CONTEXT),
    frame=PER_MILLE,
)
