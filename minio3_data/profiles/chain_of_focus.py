"""The `chain-of-focus` profile: Chain-of-Focus' V* evaluation (xtong-zhang/Chain-of-Focus
`eval/vstar/vllm_inference.py`), for `xintongzhang/CoF-rl-model-7b`. Reference: peer_conventions.md section 4.

The release, where a checkpoint can notice:
  - texts: its system prompt (`"args_format"`, "For the function call"); the user turn is the image, then
    `Question: {text}` + USER_PROMPT, where V*'s `text` lists the options as "(A) ..." lines; each observation
    is a user turn: the image, then USER_PROMPT (no tool_response tag);
  - the first `<tool_call>(.*?)</tool_call>` (DOTALL) is `json.loads`ed, `["arguments"]["bbox_2d"]` read as
    absolute pixels of the **displayed first view**, always that image (crops are cut from it:
    `crops_first_view`); a turn without a call is the final one, its answer `<answer>\\s*(.*?)\\s*</answer>`
    (not DOTALL), else "";
  - a valid box (4 numbers, 0 <= x0 < W, 0 <= y0 < H, 0 < x1 <= W, 0 < y1 <= H, x1 > x0, y1 > y0) is
    enlarged 1.5x about its centre, clamped, `int()`ed; an invalid one or an unreadable call shows the whole
    first view (no error text ever reaches the model);
  - the first view is smart_resize(28, 112^2, 3840^2) LANCZOS; a crop is doubled, then smart_resize, LANCZOS
    (display.COF_DISPLAY); 512 new tokens a turn; 6 tool turns (`--max-turns 7` scores the release's loop).
Differences, our choice: a call whose `arguments` is missing shows the whole view doubled (the release shows
it unscaled); an unreadable call is recorded as the box [0, 0, 0, 0], which the validity rule refuses, so a
replay re-derives the same whole view; images travel as JPEG (the release sends PNG).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..display import COF_DISPLAY, PixelBox
from ..peer_judge import CHAIN_OF_FOCUS
from ..protocol import IMAGE_PLACEHOLDER, OPTION_LETTERS, ORIGINAL, Action, Answer, Zoom
from .base import ReleaseLimits
from .peer import SingleSourceProfile

SYSTEM_PROMPT = (
    "You are a helpful assistant.\n\n# Tools\nYou may call one or more functions to assist with the user query.\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    '{"type": "function", "function": {"name":"image_zoom_in_tool","description":"Zoom in on a specific region of '
    'an image by cropping it based on a bounding box (bbox_2d) and an optional object label.","parameters":'
    '{"properties":{"bbox_2d":{"type":"array","items":{"type":"number"},"minItems":4,"maxItems":4,"description":'
    '"The bounding box of the region to zoom in, as [x1, y1, x2, y2], where (x1, y1) is the top-left corner and '
    '(x2, y2) is the bottom-right corner."},"label":{"type":"string","description":"The name or label of the '
    'object in the specified bounding box (optional)."}},"required":["bbox_2d"], "type":"object"},"args_format": '
    '"Format the arguments as a JSON object."}}\n</tools>\n\nFor the function call, return a json object with '
    "function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
USER_PROMPT = (
    "\nThink in the mind first, and then decide whether to call tools one or more times OR provide final answer. "
    "Format strictly as: <think>...</think> <tool_call>...</tool_call> <tool_call>...</tool_call> (if any tools "
    "needed) OR <answer>...</answer> (if no tools needed)."
)
CALL_RE = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
ANSWER_RE = re.compile(r"<answer>\s*(.*?)\s*</answer>")
ENLARGE = 1.5
UNREADABLE = (0, 0, 0, 0)  # refused by the validity rule: the whole first view


@dataclass(frozen=True)
class ChainOfFocusProfile(SingleSourceProfile):
    """Chain-of-Focus' evaluation loop: no refusals, no error turns."""

    def question_turn(self, question: str, options: Sequence[str]) -> str:
        listed = "".join(f"\n({OPTION_LETTERS[i]}) {opt}" for i, opt in enumerate(options))
        return f"{IMAGE_PLACEHOLDER}Question: {question}{listed}{USER_PROMPT}"

    def parse_turn(self, text: str, num_observations: int | None = None) -> Action:
        call = CALL_RE.search(text)
        if call is None:
            answer = ANSWER_RE.search(text)
            return Answer(answer.group(1) if answer else "")
        try:
            x0, y0, x1, y1 = json.loads(call.group(1).strip())["arguments"]["bbox_2d"]
        except (ValueError, KeyError, TypeError, IndexError):
            return Zoom(UNREADABLE, ORIGINAL)
        return Zoom((x0, y0, x1, y1), ORIGINAL)

    def box_on_source(self, bbox: tuple, size: tuple[int, int]) -> PixelBox | str:
        """`check_absolute_bbox_format`, then ×1.5 about the centre, clamped, int(); else the whole view."""
        w, h = size
        if not all(isinstance(v, (int, float)) for v in bbox):
            return 0, 0, w, h
        x0, y0, x1, y1 = bbox
        if not (0 <= x0 < w and 0 <= y0 < h and 0 < x1 <= w and 0 < y1 <= h) or x1 <= x0 or y1 <= y0:
            return 0, 0, w, h
        cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * ENLARGE, (y1 - y0) * ENLARGE
        return (int(max(0, cx - bw / 2)), int(max(0, cy - bh / 2)), int(min(w, cx + bw / 2)),
                int(min(h, cy + bh / 2)))  # fmt: skip



PROFILE = ChainOfFocusProfile(
    name="chain-of-focus",
    summary="Chain-of-Focus' V* eval: absolute pixels on the shown first view, box x1.5, crop x2 (CoF-rl-7b)",
    system_prompt=SYSTEM_PROMPT,
    observation_template="{image}" + USER_PROMPT,
    error_template="{message}",  # never shown: every call gives an image
    display=COF_DISPLAY,
    stop_strings=(),
    limits=ReleaseLimits(turn_tokens=512, context_tokens=32768, context_reserve=512),
    crops_first_view=True,
    peer_judge=CHAIN_OF_FOCUS,
)
