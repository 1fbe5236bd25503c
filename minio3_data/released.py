"""The released Mini-o3 rollout's language, byte for byte: its prompt texts and the way it reads a turn.

Source: github.com/Mini-o3/Mini-o3 at 8654dbf. The texts are the released constants, typos included
("outputing", "the the", "Countinue"), because released checkpoints were trained on exactly these
bytes. The rules re-implement, without `eval`:
  - `verl/trainer/constants.py` l.1, l.7, l.9: the system prompt, the observation and error follow-ups;
  - `vllm_async_engine.py` `process_tool_call` (l.520-582): a turn holding a `<grounding>` is a tool call,
    even with an `<answer>` in it; its greedy pattern executes the *last* grounding of the turn; the error
    turn is "ERROR occurs during grounding. Error Information: {message}.\\n" + the follow-up;
  - `_async_rollout_a_request` (l.584-): the observation turn numbers Action t and Observation t+1 by
    the assistant turn t, so after an error turn the number shown no longer equals the crop's index; a
    turn without a grounding ends the trajectory, void unless it ends with `</answer>`;
  - `function_tools.py` `prepare_grounding_inputs_multi_turn` (l.29-74): `original_image` is 0, else
    `observation_(\\d*)` matched at the start (so `observation_0` is the original too) and checked against
    the observations so far; coordinates are not range-checked (int-truncated and clamped instead).
Differences we keep on purpose: the bbox list is read with JSON or `ast.literal_eval`, never `eval`, so a
Python expression such as `[1/4, 0.1+0.1, 0.5, 0.5]` is an error turn here where the release computes it;
and grounding arguments in loose JSON (single quotes, no space after the colon) are accepted from
teachers, then stored in the canonical form the released pattern reads.
"""

from __future__ import annotations

import re

SYSTEM_PROMPT = (  # constants.py l.1, TOOL_CROP_SYSTEM_PROMPT
    "You are a helpful assistant. Answer the user's question based on the image provided. Output your thinking "
    "process within the <think> and </think> tags. Whenever you find anything unclear, you can zoom in a specific "
    'region in the given image to see more clearly by outputing <grounding>{"bbox_2d": [x0, y0, x1, y1], '
    '"source": "original_image"}</grounding>, where (x0, y0) and (x1, y1) are the top-left and bottom-right '
    "coordinates of the region that you want to zoom in, respectively (suppose the width and height of the image "
    "are 1.0), and 'source' refers to the image that you zoom in and could be either 'original_image' or "
    "'observation_i'. Once the final answer is confirmed, put it within <answer> and </answer>."
)

OBSERVATION_TEMPLATE = (  # constants.py l.7, TOOL_CALL_CROP_MULTI_TRUN_PROMPT; {image} is the vision block
    "After the above Action {action}, here is the the zoom-in image (Observation {observation}):\n{image}.\n"
    "Continue your reasoning process inside <think> and </think>. If needed, you can continue to zoom in on the "
    "original image or any of the observations, by outputting <grounding> and </grounding> as before. If the "
    "final answer is confirmed, put your final answer inside <answer> and </answer>."
)

ERROR_TEMPLATE = (  # vllm_async_engine.py l.535 + constants.py l.9, ERROR_INFO_MULTI_TURN_PROMPT
    "ERROR occurs during grounding. Error Information: {message}.\n"
    "Please analyze the error information obtained from the function tool and adjust your response. "
    "Countinue your reasoning process inside <think> and </think>."
)

GROUNDING_RE = re.compile(r"<grounding>(.*?)</grounding>", re.DOTALL)  # l.657: is this turn a tool call?
ANSWER_AT_END_RE = re.compile(r".*<answer>.*</answer>$", re.DOTALL)  # l.730: otherwise void
FIRST_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)  # the reward's strict extraction
SOURCE_RE = re.compile(r"observation_([0-9]*)", re.DOTALL)  # function_tools.py l.42, used with re.match

# The messages the release's checks raise (function_tools.py l.47, l.49, l.65, l.66, l.71)
BAD_SOURCE = "The 'source' argument \"{source}\" does not match the pattern 'observation_([0-9]*)'."
NO_SUCH_SOURCE = 'Error in predicting the source observation: "{source}".'
BAD_WIDTH = "The bounding box is not valid in width: {box}"
BAD_HEIGHT = "The bounding box is not valid in height: {box}"
BAD_ASPECT = "The absolute aspect ratio of the bounding box exceeds 200, which is too large."


def source_index(source: str) -> int:
    """The observation a `source` names, as the release resolves it; ValueError with its message."""
    if source == "original_image":
        return 0
    m = SOURCE_RE.match(source)
    if m is None or not m.group(1):
        raise ValueError(BAD_SOURCE.format(source=source))
    return int(m.group(1))


def int_error(value: float) -> str | None:
    """What `int()` says of a coordinate it cannot truncate (the release's message for nan and inf)."""
    if value != value:
        return "cannot convert float NaN to integer"
    if value in (float("inf"), float("-inf")):
        return "cannot convert float infinity to integer"
    return None
