"""The `deepeyes` profile: DeepEyes' V* evaluation (Visual-Agent/DeepEyes `eval/eval_vstar.py`), for
`ChenShawn/DeepEyes-7B`. Its variants: deepeyes_hrbench.py (the HR-Bench script, its coordinate bug and the
fix) and deepeyes_rl.py (the RL rollout). Reference: shared/reference/peer_conventions.md section 1.

The release, where a checkpoint can notice:
  - texts: `instruction_prompt_system` (= SYSTEM_PROMPT_V2, quirks kept: `"required":["bbox"]`, trailing
    spaces); the user turn is the image, then `Question: {q}\\nOptions: \\nA. ..\\n` + USER_PROMPT_V2; each
    observation is a user turn `<tool_response>` + image + USER_PROMPT_V2 + `</tool_response>`;
  - a turn holding `</answer>` ends the loop, its answer the text between its first `<answer>` and
    `</answer>`, else the whole turn; otherwise the text between the first `<tool_call>` and the next
    `</tool_call>` is Python-`eval`ed and `['arguments']['bbox_2d']` unpacked as left, top, right, bottom;
    a turn with neither is not kept and generated again (`void_retries`), counting against the budget;
  - the numbers are absolute pixels, applied to the **original** as they are (`pil_img.crop`, no clamp: out
    of the image is black, which Pillow's rounding of a float box decides); the model saw the original
    through the server's smart_resize, so on an image over 12.8 MP its numbers are in a smaller frame: the
    release's error, reproduced (the `-fixed` variants map them);
  - a crop is shown at smart_resize(28, 3136, 12,845,056), BICUBIC (display.DEEPEYES_DISPLAY);
  - any exception (an unreadable call, right < left, a zero side, an aspect over 200) aborts the episode
    (`refusal_ends`): the trajectory ends unanswered.
Undefined or differing bytes, our choice: the first view is our smart_resize (LANCZOS, JPEG) of the original,
a size the server keeps as it is (the release sends the original and lets the server resize, BICUBIC); a
question without options gets `Question: {q}\\n` + USER_PROMPT_V2 (V* always has options); options keep the
dataset's order (the cc3ff4d script shuffles them unseeded); the crop's display size comes from the rounded
box (the release passes the model's unrounded float differences to smart_resize; equal for integer boxes).
`eval` is never called: the call text is read as a Python literal with eval's messages (released.literal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..display import DEEPEYES_DISPLAY, MAX_ASPECT, PixelBox
from ..peer_judge import DEEPEYES_VSTAR
from ..protocol import IMAGE_PLACEHOLDER, OPTION_LETTERS, ORIGINAL, Action, Answer, Malformed, Void, Zoom, is_number
from .base import ReleaseLimits
from .peer import SingleSourceProfile
from .released import literal

SYSTEM_PROMPT = (  # prompt.py SYSTEM_PROMPT_V2 == eval_vstar.py instruction_prompt_system
    "You are a helpful assistant.\n\n# Tools\nYou may call one or more functions to assist with the user query.\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type":"function","function":{"name":"image_zoom_in_tool","description":"Zoom in on a specific region of an '
    'image by cropping it based on a bounding box (bbox) and an optional object label.","parameters":{"type":'
    '"object","properties":{"bbox_2d":{"type":"array","items":{"type":"number"},"minItems":4,"maxItems":4,'
    '"description":"The bounding box of the region to zoom in, as [x1, y1, x2, y2], where (x1, y1) is the '
    'top-left corner and (x2, y2) is the bottom-right corner."},"label":{"type":"string","description":"The name '
    'or label of the object in the specified bounding box (optional)."}},"required":["bbox"]}}}\n</tools>\n\n'
    "# How to call a tool\nReturn a json object with function name and arguments within <tool_call></tool_call> "
    'XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>\n\n'
    "**Example**:  \n<tool_call>  \n"
    '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [10, 20, 100, 200], "label": "the apple on the desk"}}'
    "  \n</tool_call>"
)
USER_PROMPT = (  # prompt.py USER_PROMPT_V2
    "\nThink first, call **image_zoom_in_tool** if needed, then answer. Format strictly as:  <think>...</think>  "
    "<tool_call>...</tool_call> (if tools needed)  <answer>...</answer> "
)
OBSERVATION_TEMPLATE = "<tool_response>{image}" + USER_PROMPT + "</tool_response>"
ERROR_TEMPLATE = "Error: {message}"  # the RL rollout's error turn; the eval never shows one
CALL, END_CALL, ANSWER, END_ANSWER = "<tool_call>", "</tool_call>", "<answer>", "</answer>"
NOT_A_NUMBER = "bbox_2d holds {value!r}, not a number"
LEFT_OF = "Coordinate '{side}' is less than '{other}'"  # Pillow's crop
ZERO_SIDE = "division by zero"  # smart_resize of a crop with a side of 0 px
TOO_LONG = f"aspect ratio must be smaller than {MAX_ASPECT}"


def not_a_number(bbox: tuple) -> str | None:
    """The message for a box holding a value that is not a number (JSON null, a string, a bool), or None."""
    bad = [v for v in bbox if not is_number(v)]
    return NOT_A_NUMBER.format(value=bad[0]) if bad else None


def _first_between(text: str, start: str, end: str) -> str:
    """The release's `text.split(start)[1].split(end)[0]`."""
    return text.split(start)[1].split(end)[0]


@dataclass(frozen=True)
class DeepEyesProfile(SingleSourceProfile):
    """DeepEyes' evaluation loop; `maps_to_original`: numbers in the first view's frame are scaled to the
    original (the fix of the release's coordinate error)."""

    maps_to_original: bool = False

    def question_turn(self, question: str, options: Sequence[str]) -> str:
        if not options:
            return f"{IMAGE_PLACEHOLDER}Question: {question}\n{USER_PROMPT}"
        listed = "\n" + "".join(f"{OPTION_LETTERS[i]}. {opt}\n" for i, opt in enumerate(options))
        return f"{IMAGE_PLACEHOLDER}Question: {question}\nOptions: {listed}\n{USER_PROMPT}"

    def parse_turn(self, text: str, num_observations: int | None = None) -> Action:
        if END_ANSWER in text:
            return Answer((_first_between(text, ANSWER, END_ANSWER) if ANSWER in text else text).strip())
        if CALL not in text:
            return Void("neither <tool_call> nor </answer>: the release generates the turn again")
        try:
            action = literal(_first_between(text, CALL, END_CALL).strip())
            left, top, right, bottom = action["arguments"]["bbox_2d"]  # type: ignore[index]
        except (ValueError, KeyError, TypeError, IndexError) as e:
            return Malformed(str(e))
        return Zoom((left, top, right, bottom), ORIGINAL)

    def box_on_source(self, bbox: tuple, size: tuple[int, int]) -> PixelBox | str:
        """The numbers as pixels of the original (mapped from the first view's frame where `maps_to_original`),
        rounded as Pillow rounds a float box, unclamped; refused where Pillow or smart_resize raises."""
        bad = not_a_number(bbox)
        if bad is not None:
            return bad
        values = list(bbox)
        if self.maps_to_original:
            w, h = size
            shown_w, shown_h = self.display.first_view_size(w, h)
            values = [v * s for v, s in zip(values, (w / shown_w, h / shown_h, w / shown_w, h / shown_h))]
        if not all(math.isfinite(v) for v in values):
            return f"cannot convert float {values} to integer"
        x0, y0, x1, y1 = (round(v) for v in values)
        if x1 < x0 or y1 < y0:
            return LEFT_OF.format(side="right", other="left") if x1 < x0 else LEFT_OF.format(side="lower", other="upper")
        if x1 == x0 or y1 == y0:
            return ZERO_SIDE
        if max(x1 - x0, y1 - y0) / min(x1 - x0, y1 - y0) > MAX_ASPECT:
            return TOO_LONG
        return x0, y0, x1, y1


PROFILE = DeepEyesProfile(
    name="deepeyes",
    summary="DeepEyes' V* eval: <tool_call> image_zoom_in_tool, absolute pixels on the original (DeepEyes-7B)",
    system_prompt=SYSTEM_PROMPT,
    observation_template=OBSERVATION_TEMPLATE,
    error_template=ERROR_TEMPLATE,
    display=DEEPEYES_DISPLAY,
    stop_strings=(),
    limits=ReleaseLimits(turn_tokens=10240, context_tokens=32768, context_reserve=2000),
    refusal_ends=True,
    void_retries=True,
    peer_judge=DEEPEYES_VSTAR,
)
