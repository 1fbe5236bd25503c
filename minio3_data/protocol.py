"""The action language every profile of the `<grounding>` family shares: actions, tags, sources, rendering.

Structure, tags, JSON keys and relative coordinates match the released Mini-o3 code. What differs between
profiles (texts, how strictly a turn is read, crop and display rules) lives in `minio3_data/profiles/`.

An assistant turn is `<think>...</think>` followed by exactly one action:
  - a zoom:   `<grounding>{"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}</grounding>`
  - an answer: `<answer>...</answer>`

`first_action` is the rule of a turn that holds both: the action whose closing tag comes first wins and the
rest of the text is ignored, exactly as if generation had stopped at that stop string. Tags the model merely
mentions inside its thought ("I will zoom with <grounding>...") are skipped when an action follows `</think>`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

IMAGE_PLACEHOLDER = "<image>"
ORIGINAL = "original_image"
STOP_STRINGS: tuple[str, ...] = ("</grounding>", "</answer>")
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Zoom:
    # (x0, y0, x1, y1) relative to `source` as the profile read them: numbers, or in `released` whatever
    # literal the model wrote (its tool then computes with it as the release does)
    bbox: tuple[Any, Any, Any, Any]
    source: str = ORIGINAL  # "original_image" or "observation_k" (k >= 1)

    @property
    def source_index(self) -> int:
        return source_index(self.source)

    def numbers(self) -> list[float] | None:
        """The bbox as floats for a record, or None when a value is not a number (such a zoom is refused)."""
        try:
            values = [float(v) for v in self.bbox]
        except (TypeError, ValueError, OverflowError):
            return None
        return values if len(values) == 4 else None


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
_TAG_RE = re.compile(r"</?(?:think|grounding|answer)>")


def is_number(value: object) -> bool:
    """A number as a model's (or a file's) JSON gives it: an int or a float, never a bool (an int in Python)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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


def first_action(text: str) -> re.Match[str] | None:
    """The action whose closing tag comes first, looking after `</think>` first when the turn has one; its
    group 1 is the action's inner text."""
    think_end = text.find(_THINK_END)
    starts = (think_end + len(_THINK_END), 0) if think_end >= 0 else (0,)
    for start in starts:
        found = [m for m in (_GROUNDING_RE.search(text, start), _ANSWER_RE.search(text, start)) if m]
        if found:
            return min(found, key=lambda m: m.end())
    return None


def is_answer(match: re.Match[str]) -> bool:
    """Whether a `first_action` match is an answer (else a grounding)."""
    return match.re is _ANSWER_RE


def trim_turn(text: str) -> str:
    """The turn as generation would have left it: stop string restored, text after its first action dropped."""
    text = restore_stop(text)
    m = first_action(text)
    return text[: m.end()] if m else text


def render_action(action: Zoom | Answer) -> str:
    if isinstance(action, Zoom):
        args = json.dumps({"bbox_2d": list(action.bbox), "source": action.source})
        return f"<grounding>{args}</grounding>"
    return f"<answer>{action.text}</answer>"


def render_turn(think: str, action: Zoom | Answer) -> str:
    """The exact assistant text for a thought and an action."""
    return f"<think>{think}</think>\n{render_action(action)}"


def canonical_turn(text: str, action: Zoom | Answer) -> str:
    """A parsed turn re-rendered in the one form every stage writes and the released rollout reads: its
    thought (the text before the action when it has no <think>) and the action rendered by render_action,
    so a student never learns a teacher's loose JSON, code fences or trailing prose."""
    think = extract_think(text)
    if not think:
        m = first_action(text) or re.search(r"<(?:grounding|answer)>", text)
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
