"""The action language every stage speaks: prompts, and parse/render of one assistant turn.

Structure, tags, JSON keys and relative coordinates match the released Mini-o3 code. This module holds
the `minio3` profile's texts and the tolerant reading of a turn that both profiles share; the released
texts and rules are in `released.py`, and `profiles.py` puts each profile together.

An assistant turn is `<think>...</think>` followed by exactly one action:
  - a zoom:   `<grounding>{"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}</grounding>`
  - an answer: `<answer>...</answer>`

Rule for a turn that holds both: the action whose closing tag comes first wins and the rest of the
text is ignored, exactly as if generation had stopped at that stop string. Tags the model merely mentions
inside its thought ("I will zoom with <grounding>...") are skipped when an action follows `</think>`.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass

IMAGE_PLACEHOLDER = "<image>"
ORIGINAL = "original_image"
STOP_STRINGS: tuple[str, ...] = ("</grounding>", "</answer>")
COORD_TOLERANCE = 0.02  # coordinates in [-tol, 1 + tol] are clamped to [0, 1]; beyond that, rejected

SYSTEM_PROMPT = (
    "You are a helpful assistant who answers the user's question about an image. "
    "Think step by step and write your reasoning between <think> and </think>. "
    "When a detail is too small or unclear to see, zoom in on a region by writing "
    '<grounding>{"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}</grounding>, '
    "where (x0, y0) is the top-left and (x1, y1) the bottom-right corner of the region, "
    "with the width and height of the source image both taken as 1.0. "
    "The source is 'original_image' or 'observation_i' to zoom further into the i-th zoomed-in observation. "
    "When you are sure, give the final answer between <answer> and </answer>."
)

OBSERVATION_TEMPLATE = (
    "After the above Action {action}, here is the zoom-in image (Observation {observation}):\n"
    "{image}.\n"
    "Continue your reasoning between <think> and </think>. If needed, zoom in again on the original image "
    "or on any observation by writing <grounding> and </grounding> as before. "
    "If the final answer is confirmed, give it between <answer> and </answer>."
)

ERROR_TEMPLATE = (
    "ERROR occurs during grounding. Error Information: {message}.\n"
    "Analyze what went wrong and continue your reasoning between <think> and </think>; then either zoom "
    "with a corrected <grounding> or give your final answer between <answer> and </answer>."
)

OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Zoom:
    bbox: tuple[float, float, float, float]  # relative to `source`, (x0, y0, x1, y1) in [0, 1]
    source: str = ORIGINAL  # "original_image" or "observation_k" (k >= 1)

    @property
    def source_index(self) -> int:
        return source_index(self.source)


@dataclass(frozen=True)
class Answer:
    text: str


@dataclass(frozen=True)
class Malformed:
    reason: str  # shown to the model in the error turn


@dataclass(frozen=True)
class Void:
    """A turn that ends the trajectory without an answer (the `released` profile: no action at all)."""

    reason: str


Action = Zoom | Answer | Malformed | Void

# `(?:(?!<tag>).)*?` takes the innermost opening tag, so a stray "<grounding>" earlier in the text
# cannot swallow the real action.
_GROUNDING_RE = re.compile(r"<grounding>((?:(?!<grounding>).)*?)</grounding>", re.DOTALL)
_ANSWER_RE = re.compile(r"<answer>((?:(?!<answer>).)*?)</answer>", re.DOTALL)
_THINK_RE = re.compile(r"<think>(.*?)</think>", re.DOTALL)
_THINK_END = "</think>"
_OBS_RE = re.compile(r"observation_(\d+)")
_BBOX_RE = re.compile(r"""["']?bbox_2d["']?\s*:\s*(?:\[([^\]]*)\]|\(([^)]*)\))""")
_SOURCE_RE = re.compile(r"""["']?source["']?\s*:\s*["']([^"']*)["']""")
_FORMAT_HINT = 'write {"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}'
_ARITY = "bbox_2d must hold exactly four numbers [x0, y0, x1, y1]"


def source_index(source: str) -> int:
    """0 for the original image, k for `observation_k`; raises ValueError otherwise."""
    if source == ORIGINAL:
        return 0
    m = _OBS_RE.fullmatch(source)
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"unknown source {source!r}; use 'original_image' or 'observation_k' with k >= 1")
    return int(m.group(1))


def source_name(index: int) -> str:
    return ORIGINAL if index == 0 else f"observation_{index}"


def restore_stop(text: str) -> str:
    """Re-append a stop string the API cut off: an opened <grounding>/<answer> with no closing tag."""
    for tag in ("grounding", "answer"):
        opened = text.rfind(f"<{tag}>")
        if opened >= 0 and text.find(f"</{tag}>", opened) < 0:
            return text.rstrip() + f"</{tag}>"
    return text


def extract_think(text: str) -> str:
    m = _THINK_RE.search(text)
    return m.group(1).strip() if m else ""


def _first_action(text: str) -> re.Match[str] | None:
    """The action whose closing tag comes first, looking after `</think>` first when the turn has one."""
    think_end = text.find(_THINK_END)
    starts = (think_end + len(_THINK_END), 0) if think_end >= 0 else (0,)
    for start in starts:
        found = [m for m in (_GROUNDING_RE.search(text, start), _ANSWER_RE.search(text, start)) if m]
        if found:
            return min(found, key=lambda m: m.end())
    return None


def trim_turn(text: str) -> str:
    """The turn as generation would have left it: stop string restored, text after the action dropped.

    What a trajectory should store and train on; parse_turn(trim_turn(t)) == parse_turn(t).
    """
    text = restore_stop(text)
    m = _first_action(text)
    return text[: m.end()] if m else text


def _number(token: str) -> float:
    """One coordinate as written (int, float, exponent, nan/inf spelled any way); never evaluates code."""
    try:
        return float(token)
    except ValueError:
        raise ValueError(f"{_ARITY}; cannot read {_short(token.strip())} as a number") from None


def load_args(raw: str) -> object:
    """The arguments inside <grounding>...</grounding>, read leniently (JSON, Python literals, or the two
    fields found directly); ValueError when nothing can be read. Never evaluates code."""
    raw = raw.strip()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(raw)  # literals only: never evaluates code
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        pass
    # Code fences, `nan`, missing braces, trailing prose: read the two fields directly.
    bbox = _BBOX_RE.search(raw)
    if not bbox:
        raise ValueError(f"cannot read the grounding; {_FORMAT_HINT}")
    inner = bbox.group(1) if bbox.group(1) is not None else bbox.group(2)
    coords = [_number(t) for t in inner.split(",")] if inner.strip() else []
    source = _SOURCE_RE.search(raw)
    return {"bbox_2d": coords, "source": source.group(1) if source else ORIGINAL}


def _short(value: object, limit: int = 24) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _coordinate(value: object) -> float:
    """A valid relative coordinate, clamped to [0, 1] when it is within COORD_TOLERANCE of the range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(_ARITY)
    try:
        v = float(value)
    except OverflowError:  # an integer too large for a float: far outside [0, 1]
        v = math.inf
    if isinstance(value, float) and not math.isfinite(v):
        raise ValueError("bbox_2d holds a non-finite number (nan or inf); use four numbers between 0 and 1")
    if v < -COORD_TOLERANCE or v > 1 + COORD_TOLERANCE:
        raise ValueError(
            f"coordinate {_short(value)} is outside [0, 1]; coordinates are relative to the source image, "
            "whose width and height are 1.0"
        )
    return min(1.0, max(0.0, v))


def _to_zoom(args: object, num_observations: int | None) -> Zoom:
    if isinstance(args, list) and len(args) == 1 and isinstance(args[0], dict):
        args = args[0]
    if not isinstance(args, dict) or "bbox_2d" not in args:
        raise ValueError(f'the grounding must be one object with "bbox_2d" and "source"; {_FORMAT_HINT}')
    coords = args["bbox_2d"]
    if not isinstance(coords, (list, tuple)) or len(coords) != 4:
        raise ValueError(_ARITY)
    x0, y0, x1, y1 = (_coordinate(c) for c in coords)
    source = args.get("source", ORIGINAL)
    if not isinstance(source, str):
        raise ValueError("source must be 'original_image' or 'observation_k'")
    idx = source_index(source.strip().lower())
    if num_observations is not None and idx > num_observations:
        raise ValueError(f"{source.strip()} does not exist yet; there are {num_observations} observation(s)")
    return Zoom((x0, y0, x1, y1), source_name(idx))


def parse_turn(text: str, num_observations: int | None = None) -> Action:
    """Parse one assistant turn into Zoom | Answer | Malformed. Never raises, never evaluates code.

    `num_observations` (crops so far) lets the parser reject `observation_k` that does not exist.
    """
    m = _first_action(restore_stop(text))
    if m is None:
        return Malformed(
            "no action found; end the turn with <grounding>...</grounding> or <answer>...</answer>"
        )
    if m.re is _ANSWER_RE:
        return Answer(m.group(1).strip())
    try:
        return _to_zoom(load_args(m.group(1)), num_observations)
    except ValueError as e:
        return Malformed(str(e))


def render_action(action: Zoom | Answer) -> str:
    if isinstance(action, Zoom):
        args = json.dumps({"bbox_2d": list(action.bbox), "source": action.source})
        return f"<grounding>{args}</grounding>"
    return f"<answer>{action.text}</answer>"


def render_turn(think: str, action: Zoom | Answer) -> str:
    """The exact assistant text for a thought and an action."""
    return f"<think>{think}</think>\n{render_action(action)}"


_TAG_RE = re.compile(r"</?(?:think|grounding|answer)>")


def canonical_turn(text: str, action: Zoom | Answer) -> str:
    """A parsed turn re-rendered in the one form every stage writes and the released rollout reads: its
    thought (the text before the action when it has no <think>) and the action rendered by render_action,
    so a student never learns a teacher's loose JSON, code fences or trailing prose."""
    think = extract_think(text)
    if not think:
        m = _first_action(text) or re.search(r"<(?:grounding|answer)>", text)
        think = _TAG_RE.sub("", text[: m.start()] if m else text).strip()
    return render_turn(think, action)


def question_text(question: str, options: list[str] | tuple[str, ...] = ()) -> str:
    """The canonical user question (no <image> placeholder) with lettered options when multiple choice."""
    if not options:
        return question
    lines = [question, "Options:"]
    lines += [f"{OPTION_LETTERS[i]}. {opt}" for i, opt in enumerate(options)]
    lines.append("Answer with the option's letter.")
    return "\n".join(lines)
