"""The `released` profile: the released Mini-o3 rollout byte for byte, wherever a model can notice.

Source: github.com/Mini-o3/Mini-o3 at 8654dbf. The texts are the released constants, typos included
("outputing", "the the", "Countinue"), because released checkpoints were trained on exactly these bytes.
The rules follow:
  - `verl/trainer/constants.py` l.1, l.7, l.9: the system prompt, the observation and error follow-ups;
  - `vllm_async_engine.py` `process_tool_call` (l.520-582): a turn holding a `<grounding>` is a tool call, even
    with an `<answer>` in it; its arguments are read with one pattern (ARGUMENTS_RE, greedy: the last grounding
    whose text fits it), the bbox text is `eval`ed, and any exception becomes the error turn
    "ERROR occurs during grounding. Error Information: {str(exception)}.\\n" + the follow-up: a turn the
    pattern does not fit (compact or reordered JSON, code fences, a space before the brace) gets
    "'NoneType' object has no attribute 'group'", a failed assert an empty message;
  - `_async_rollout_a_request` (l.584-): the observation turn numbers Action t and Observation t+1 by the
    assistant turn t, so after an error turn the number shown no longer equals the crop's index; a turn
    without a grounding ends the trajectory, void unless it ends with `</answer>`;
  - `function_tools.py` `prepare_grounding_inputs_multi_turn` (l.29-74): `bbox_2d` must be a list of four,
    `original_image` is 0, else `observation_(\\d*)` matched at the start (so `observation_0` is the original
    too) and checked against the observations so far; each coordinate is multiplied by the source's side and
    `int()`ed with Python's own semantics (a string "1" is repeated, then read as an integer), x0 and y0
    clamped below at 0 and x1 and y1 above at the last pixel (a refused box is printed that way);
  - `general_qa_tool.compute_score` (extract_answer_tags="strict"): the first `<answer>` span of the turns
    joined with a space.
Differences kept on purpose (docs/protocol.md):
  - never `eval`: the bbox text is parsed as Python and literals are computed as `eval` would (lists, tuples,
    dicts, sets, strings, numbers, unary signs; its SyntaxError texts); a name is never looked up (every name
    gets `eval`'s "name 'x' is not defined", where the release would find Python's builtins and its module's
    imports) and an expression (`1/4`, a call) is refused with our message where the release computes it;
  - a string coordinate is repeated at most to a million characters before `int()` reads it (past 4,300
    digits `int()` refuses it either way; only the digit count in that message can differ);
  - messages that depend on the Python version are this interpreter's (the release pins Python 3.11);
  - teachers in synthesis (`for_teachers`) are read tolerantly: loose JSON, key order, code fences and a
    missing source are accepted, a coordinate that is not a number is refused with our message, and the
    accepted turn is stored in the canonical form the strict reading reads. Eval and RL read strictly.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from ..display import MAX_ASPECT, RELEASED_DISPLAY, PixelBox
from ..protocol import (
    ORIGINAL, Action, Answer, Malformed, Void, Zoom, canonical_turn, is_number, restore_stop, source_name,
)
from .base import ProtocolProfile
from .tolerant import FOUR_NUMBERS, read_arguments, short

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
ARGUMENTS_RE = re.compile(  # l.523, applied with re.match to the whole turn
    r""".*<grounding>{"bbox_2d": (.*),.*"source": [',"](.*)[',"]}</grounding>""", re.DOTALL
)
ANSWER_AT_END_RE = re.compile(r".*<answer>.*</answer>$", re.DOTALL)  # l.730: otherwise void
FIRST_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)  # the reward's strict extraction
SOURCE_RE = re.compile(r"observation_([0-9]*)", re.DOTALL)  # function_tools.py l.42, used with re.match

# The messages the release's code raises (vllm_async_engine.py l.525; function_tools.py l.47, l.49, l.65,
# l.66, l.71); a failed assert without a message says "".
NO_MATCH = "'NoneType' object has no attribute 'group'"
BAD_SOURCE = "The 'source' argument \"{source}\" does not match the pattern 'observation_([0-9]*)'."
NO_SUCH_SOURCE = 'Error in predicting the source observation: "{source}".'
BAD_WIDTH = "The bounding box is not valid in width: {box}"
BAD_HEIGHT = "The bounding box is not valid in height: {box}"
BAD_ASPECT = "The absolute aspect ratio of the bounding box exceeds 200, which is too large."
NOT_EVALUATED = "minio3 does not evaluate the expression {expression}; write the numbers themselves"
MAX_REPEAT = 1 << 20  # characters a string coordinate is repeated to at most (see the module docstring)

_UNARY: dict[type[ast.unaryop], Callable[[object], object]] = {
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert, ast.Not: operator.not_,
}


def literal(text: str) -> object:
    """What the release's `eval(text)` gives where `text` is a literal, computed without evaluating anything;
    ValueError with `eval`'s message (a SyntaxError, an undefined name, an unhashable key) or ours for an
    expression. `eval` skips leading spaces and tabs, so this does too."""
    try:
        tree = compile(text.lstrip(" \t"), "<string>", "eval", ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError, MemoryError, RecursionError) as e:
        raise ValueError(str(e)) from None
    try:
        return _value(tree.body)
    except RecursionError as e:
        raise ValueError(str(e)) from None


def _value(node: ast.expr) -> object:
    """One node's value, children in Python's evaluation order, so the first error is the one `eval` raises."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        raise ValueError(f"name {node.id!r} is not defined")
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and not any(isinstance(e, ast.Starred) for e in node.elts):
        values = [_value(e) for e in node.elts]
        if isinstance(node, ast.Set):
            return _computed(set, values)
        return values if isinstance(node, ast.List) else tuple(values)
    if isinstance(node, ast.Dict) and None not in node.keys:
        pairs = [(_value(k), _value(v)) for k, v in zip(node.keys, node.values)]  # type: ignore[arg-type]
        return _computed(dict, pairs)
    if isinstance(node, ast.UnaryOp):
        return _computed(_UNARY[type(node.op)], _value(node.operand))
    raise ValueError(NOT_EVALUATED.format(expression=short(ast.unparse(node), 40)))


def _computed(build: Callable[[object], object], value: object) -> object:
    """build(value), with Python's TypeError (an unhashable key, a bad operand) as the message."""
    try:
        return build(value)
    except TypeError as e:
        raise ValueError(str(e)) from None


def _call_arguments(text: str) -> tuple[object, object]:
    """The release's reading: its pattern on the whole turn, then `eval` of the bbox text."""
    m = ARGUMENTS_RE.match(text)
    if m is None:
        raise ValueError(NO_MATCH)
    return literal(m.group(1)), m.group(2)


def _teacher_arguments(text: str) -> tuple[object, object]:
    """The tolerant reading of a teacher's last grounding (for_teachers)."""
    args = read_arguments(GROUNDING_RE.findall(text)[-1])
    if not isinstance(args, dict):
        raise ValueError("")
    coords = args.get("bbox_2d")
    if isinstance(coords, list) and not all(is_number(v) for v in coords):
        raise ValueError(FOUR_NUMBERS)
    return coords, args.get("source", ORIGINAL)


def _times(value: object, side: int) -> object:
    """`value * side` as the release computes it, without building what `int()` refuses anyway: a string at
    most MAX_REPEAT characters long, a list or tuple not repeated (`int()` refuses it by its type)."""
    if isinstance(value, (str, bytes)) and len(value) * side > MAX_REPEAT:
        return value * (MAX_REPEAT // len(value) + 1)
    if isinstance(value, (list, tuple)):
        return value
    return value * side  # type: ignore[operator]


@dataclass(frozen=True)
class ReleasedProfile(ProtocolProfile):
    """The released rollout. `tolerant`: the reading synthesis applies to teachers (module docstring)."""

    tolerant: bool = False

    def observation_number(self, action_index: int, crop_index: int) -> int:
        """By turn, t + 1: after an error turn it no longer equals the crop `observation_k` resolves to."""
        return action_index + 1

    def trim_turn(self, text: str) -> str:
        """A turn with a grounding ends at its first `</grounding>` (vLLM's stop string), whatever came
        before; any other turn at its first `</answer>` (our teachers' stop string)."""
        text = restore_stop(text)
        tag = "</grounding>" if "<grounding>" in text else "</answer>"
        end = text.find(tag)
        return text[: end + len(tag)] if end >= 0 else text

    def parse_turn(self, text: str, num_observations: int | None = None) -> Action:
        """A turn with a grounding is a zoom, or the error its arguments raise; else an answer when it ends
        with `</answer>`; else void (the trajectory ends)."""
        text = restore_stop(text)
        if GROUNDING_RE.search(text) is None:
            answer = FIRST_ANSWER_RE.search(text)
            if answer is not None and ANSWER_AT_END_RE.match(text):
                return Answer(answer.group(1).strip())
            return Void("no <grounding> and no final <answer>: the turn ends the trajectory")
        try:
            bbox, source = (_teacher_arguments if self.tolerant else _call_arguments)(text)
            # prepare_grounding_inputs_multi_turn's checks before it touches pixels (a failed assert says nothing)
            if not isinstance(bbox, list) or len(bbox) != 4 or not isinstance(source, str):
                raise ValueError("")
            index = self.existing_source(source, num_observations)
        except ValueError as e:
            return Malformed(str(e))
        return Zoom((bbox[0], bbox[1], bbox[2], bbox[3]), source_name(index))

    def resolve_source(self, source: str) -> int:
        """`original_image`, else `observation_(\\d*)` matched at the start (function_tools.py l.37-47)."""
        if source == ORIGINAL:
            return 0
        m = SOURCE_RE.match(source)
        if m is None or not m.group(1):
            raise ValueError(BAD_SOURCE.format(source=source))
        return int(m.group(1))

    def missing_source(self, source: str, num_observations: int) -> str:
        return NO_SUCH_SOURCE.format(source=source)

    def box_on_source(self, bbox: tuple, size: tuple[int, int]) -> PixelBox | str:
        """function_tools.py l.55-71: each coordinate times the side, int(), x0/y0 clamped at 0 and x1/y1 at
        the last pixel; refused (with the box as clamped) when narrower or shorter than 1 px, or elongated to
        an aspect of MAX_ASPECT or more. Any exception's message is the refusal, as in the release."""
        w, h = size
        try:
            scaled = [_times(v, side) for v, side in zip(bbox, (w, h, w, h))]
            x0, y0, x1, y1 = (int(v) for v in scaled)  # type: ignore[call-overload]
            box = [max(x0, 0), max(y0, 0), min(x1, w - 1), min(y1, h - 1)]
            if box[0] > box[2] - 1:
                return BAD_WIDTH.format(box=box)
            if box[1] > box[3] - 1:
                return BAD_HEIGHT.format(box=box)
        except (TypeError, ValueError, OverflowError) as e:  # ValueError also where a huge int cannot print
            return str(e)
        bw, bh = box[2] - box[0], box[3] - box[1]
        if bw / bh >= MAX_ASPECT or bh / bw >= MAX_ASPECT:
            return BAD_ASPECT
        return box[0], box[1], box[2], box[3]

    def for_teachers(self) -> ProtocolProfile:
        return replace(self, tolerant=True)

    def stored_turn(self, text: str, action: Zoom | Answer) -> str:
        """Strict: the model's own bytes, as the release keeps them in context. Tolerant: canonical."""
        return canonical_turn(text, action) if self.tolerant else text

    def first_answer(self, turns: Sequence[str]) -> str | None:
        """The release's reward extraction: the first `<answer>(.*?)</answer>` of the turns joined with a
        space, even in a turn that zoomed or ended void."""
        m = FIRST_ANSWER_RE.search(" ".join(self.trim_turn(text) for text in turns))
        return m.group(1).strip() if m else None


PROFILE = ReleasedProfile(
    name="released",
    summary="the released Mini-o3 rollout's prompts, pixels and parsing, byte for byte: drop-in for its checkpoints",
    system_prompt=SYSTEM_PROMPT,
    observation_template=OBSERVATION_TEMPLATE,
    error_template=ERROR_TEMPLATE,
    display=RELEASED_DISPLAY,
)
