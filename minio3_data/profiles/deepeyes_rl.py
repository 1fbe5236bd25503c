"""`deepeyes-rl`: DeepEyes' RL rollout (Visual-Agent/DeepEyes 6c5e796, `VisualToolBoxV2` in
`verl/workers/agent/envs/mm_process_engine/visual_toolbox_v2.py`, the loop in `verl/workers/agent/parallel_env.py`),
the tool rules `ChenShawn/DeepEyes-7B` was trained under. Reference: peer_conventions.md sections 1.3-1.6.

Where it differs from `deepeyes` (the V* eval, deepeyes.py), whose texts, first view and display it keeps:
  - a turn whose last `<answer>(.*?)</answer>` (DOTALL) is non-empty, or that holds no complete `<tool_call>`,
    ends the rollout; its answer is the reward's `split("<answer>")[-1].split("</answer>")[0].strip()`, which on
    the turn that ends the rollout is the last `<answer>` of the whole response; a turn with neither tag ends
    unanswered (void; the release does not generate it again);
  - the **last** `<tool_call>(.*?)</tool_call>` of the turn is read with `json.loads`; a failure is the user turn
    `Error: Invalid tool call format: {call}. Error: {json error}`; a missing key or another tool is
    `Error: {exception text}` (Python's own, e.g. `'bbox_2d'`, `Unknown tool name: x`); the loop goes on;
  - the numbers are absolute pixels of the original, clamped to it (`max(0, left)`, `min(W, right)`, ...), and
    refused with `Error: ZOOM IN ARGUMENTS ARE INVALID` unless right > left, bottom > top, the aspect ratio is at
    most 100 and the short side over 30 px (floats compared as written); Pillow's crop rounds the float box;
    the crop is shown at smart_resize(28, 3136, 12,845,056), BICUBIC. On an image over 12.8 MP the model sees
    a smaller first view and its numbers are still applied to the original unscaled: the release's rule, kept;
  - 5 generations (`agent.max_turns=5`: `minio3 eval --max-turns 5`, the fifth turn's call is over-turn), 10,240
    new tokens a turn, 8,192 + 20,480 tokens in all, no room kept back.
Undefined or differing, our choice: the train user prompt lives only in the released parquet, so the first user
turn is the eval's (deepeyes.py); `image_rotate_tool`, which the release rotates the original for but its prompt
never names, is refused as an unknown tool; a `bbox_2d` that is not four numbers gets our message (the release's
is whatever Python raises unpacking it); `--judge-rule peer` is the V* eval's judge, since the RL reward asks its
LLM at temperature 0.3 with a random seed and scores no letter rules.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..display import DEEPEYES_DISPLAY, PixelBox
from ..peer_judge import DEEPEYES_VSTAR
from ..protocol import ORIGINAL, Action, Answer, Malformed, Void, Zoom
from .base import ReleaseLimits
from .deepeyes import (
    ANSWER, END_ANSWER, ERROR_TEMPLATE, OBSERVATION_TEMPLATE, SYSTEM_PROMPT, DeepEyesProfile, not_a_number,
)

TOOL = "image_zoom_in_tool"
CALLS = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)  # extract_action
ANSWERS = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)  # extract_answer
BAD_FORMAT = "Invalid tool call format: {call}. Error: {error}"
UNKNOWN_TOOL = "Unknown tool name: {name}"
INVALID = "ZOOM IN ARGUMENTS ARE INVALID"
NOT_FOUR = "bbox_2d must be four numbers [x1, y1, x2, y2], got {value}"
MAX_ASPECT = 100  # validate_bbox: max(h, w) / min(h, w) <= 100
MIN_SIDE = 30  # validate_bbox: min(h, w) > 30


@dataclass(frozen=True)
class DeepEyesRLProfile(DeepEyesProfile):
    """DeepEyes' RL tool (module docstring)."""

    def parse_turn(self, text: str, num_observations: int | None = None) -> Action:
        answers, calls = ANSWERS.findall(text), CALLS.findall(text)
        if (answers and answers[-1]) or not calls:
            if ANSWER in text:
                return Answer(text.split(ANSWER)[-1].split(END_ANSWER)[0].strip())
            return Void("neither <answer> nor <tool_call>: the release's rollout ends unanswered")
        call = calls[-1].strip()
        try:
            parsed = json.loads(call)
        except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
            return Malformed(BAD_FORMAT.format(call=call, error=e))
        try:  # JSON data: subscripting it runs no code and raises Python's messages, as the release's does
            name, arguments = parsed["name"], parsed["arguments"]
            if name != TOOL:
                return Malformed(UNKNOWN_TOOL.format(name=name))
            bbox = arguments["bbox_2d"]
        except (KeyError, TypeError, IndexError) as e:
            return Malformed(str(e))
        if not isinstance(bbox, list) or len(bbox) != 4:
            return Malformed(NOT_FOUR.format(value=json.dumps(bbox)))
        return Zoom(tuple(bbox), ORIGINAL)  # type: ignore[arg-type]

    def box_on_source(self, bbox: tuple, size: tuple[int, int]) -> PixelBox | str:
        """maybe_resize_bbox: clamped to the original, validate_bbox on the float box, Pillow's rounding."""
        bad = not_a_number(bbox)
        if bad is not None:
            return bad
        w, h = size
        left, top, right, bottom = max(0, bbox[0]), max(0, bbox[1]), min(w, bbox[2]), min(h, bbox[3])
        if not (left < right and bottom > top):
            return INVALID
        height, width = bottom - top, right - left
        if max(height, width) / min(height, width) > MAX_ASPECT or not min(height, width) > MIN_SIDE:
            return INVALID
        return round(left), round(top), round(right), round(bottom)


PROFILE = DeepEyesRLProfile(
    name="deepeyes-rl",
    summary="DeepEyes' RL rollout: last <tool_call>, json.loads, pixels clamped, min side 30, Error: turns",
    system_prompt=SYSTEM_PROMPT,
    observation_template=OBSERVATION_TEMPLATE,
    error_template=ERROR_TEMPLATE,
    display=DEEPEYES_DISPLAY,
    stop_strings=(),
    limits=ReleaseLimits(turn_tokens=10240, context_tokens=8192 + 20480, context_reserve=1),
    peer_judge=DEEPEYES_VSTAR,
)
