"""What a question says about a scene: descriptions of objects, question wording, options, relations.

A `Description` is a set of attribute constraints (shape, color, pattern, border); the checker proves
it picks out exactly the intended objects, and the difficulty rule counts the objects it nearly picks
out (look-alikes). Question text never lists the options: `protocol.question_text` renders them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields

from minio3_data.protocol import OPTION_LETTERS

from .layout import ObjectBox
from .scene import SIGN, SceneObject

KINDS: tuple[str, ...] = ("color", "shape", "text", "count", "position")
DIRECTIONS: tuple[str, ...] = ("left", "right", "above", "below")
NUM_OPTIONS = 4


@dataclass(frozen=True)
class Description:
    """Attribute constraints; None means "any"."""

    shape: str | None = None
    color: str | None = None
    pattern: str | None = None
    border: str | None = None

    def constraints(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def matches(self, obj: SceneObject) -> bool:
        return all(obj.attr(k) == v for k, v in self.constraints().items())

    def shares(self, obj: SceneObject) -> bool:
        """True when `obj` meets at least one constraint but not all: a look-alike."""
        hits = [obj.attr(k) == v for k, v in self.constraints().items()]
        return any(hits) and not all(hits)

    def phrase(self, plural: bool = False) -> str:
        """English noun phrase, e.g. "striped red star", "yellow sign with a blue border"."""
        s = "s" if plural else ""
        if self.shape == SIGN:
            words = [w for w in (self.color, f"sign{s}") if w]
            tail = f" with a {self.border} border" if self.border else ""
            return " ".join(words) + tail
        adjective = self.pattern if self.pattern in ("plain", "striped") else None
        words = [w for w in (adjective, self.color, f"{self.shape or 'object'}{s}") if w]
        tail = " with a dot in the middle" if self.pattern == "dotted" else ""
        return " ".join(words) + tail


@dataclass
class QuestionSpec:
    """A synthetic question before rendering: its kind, who it is about, and the true answer value."""

    kind: str
    subjects: list[Description]  # two for position (a relative to b), else one
    value: str  # the open-ended answer: a color, a shape, the sign's text, a count, a direction
    options: list[str] = field(default_factory=list)  # empty when open-ended
    numeric: bool = False  # text questions about a number say so

    @property
    def question(self) -> str:
        return question_for(self.kind, self.subjects, self.numeric, multiple_choice=bool(self.options))

    @property
    def answer(self) -> str:
        return answer_for(self.value, self.options)


def question_for(
    kind: str, subjects: list[Description], numeric: bool = False, multiple_choice: bool = False
) -> str:
    """The question text of `kind` about `subjects` (two subjects for position, else one)."""
    d = subjects[0]
    if kind == "color":
        return f"What color is the {d.phrase()}?"
    if kind == "shape":
        return f"What shape is the {d.phrase()}?"
    if kind == "text":
        what = "What number is" if numeric else "What is"
        return f"{what} written on the {d.phrase()}?"
    if kind == "count":
        return f"How many {d.phrase(plural=True)} are there in the image?"
    if kind == "position":
        return position_question(d.phrase(), subjects[1].phrase(), multiple_choice)
    raise ValueError(f"unknown question kind {kind!r}")


def position_question(a: str, b: str, multiple_choice: bool) -> str:
    """Open questions name the four possible answers; multiple choice leaves that to the options."""
    if multiple_choice:
        return f"Where is the {a} relative to the {b}?"
    return f"Where is the {a} relative to the {b}: left, right, above or below?"


def relation(a: ObjectBox, b: ObjectBox) -> str | None:
    """Where box `a` is relative to box `b`, or None unless one direction clearly dominates.

    Clear means the displacement along one axis is at least twice the other and the boxes do not
    overlap along that axis, so no reasonable reader could answer differently.
    """
    dx = (a[0] + a[2] - b[0] - b[2]) / 2
    dy = (a[1] + a[3] - b[1] - b[3]) / 2
    if abs(dx) >= 2 * abs(dy):
        if a[2] <= b[0]:
            return "left"
        if a[0] >= b[2]:
            return "right"
    if abs(dy) >= 2 * abs(dx):
        if a[3] <= b[1]:
            return "above"
        if a[1] >= b[3]:
            return "below"
    return None


def choices(value: str, preferred: list[str], pool: list[str], rng: random.Random) -> list[str]:
    """NUM_OPTIONS distinct options holding `value` once: preferred distractors first, then the pool."""
    out = [value]
    for cand in preferred + rng.sample(pool, len(pool)):
        if len(out) == NUM_OPTIONS:
            break
        if cand not in out:
            out.append(cand)
    rng.shuffle(out)
    return out


def count_choices(value: int, rng: random.Random) -> list[str]:
    """Numbers near the true count (never negative)."""
    near = [str(value + d) for d in (-1, 1, 2, -2, 3, 4) if value + d >= 0]
    return choices(str(value), near[:3], [str(value + d) for d in range(5, 9)], rng)


def answer_for(value: str, options: list[str]) -> str:
    """The stored answer: the option letter for multiple choice, else the value itself."""
    return OPTION_LETTERS[options.index(value)] if options else value
