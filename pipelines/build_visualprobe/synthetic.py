"""Synthetic VisualProbe items: a scene, a question about a small target, and its proof of unambiguity.

`make_sample(seed)` is a pure function of its arguments: it plans a scene aimed at a difficulty, lays
out the target, its look-alikes and unrelated fillers, asks the checker whether the question has
exactly one right answer, classifies the difficulty by the rule, and only then draws the pixels.
Items the checker rejects (or whose class misses a requested difficulty) are regenerated from the
next attempt seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from PIL import Image

from minio3_data.errors import BadInputError
from minio3_data.images import MAX_PIXELS_ENV, max_image_pixels
from minio3_data.records import DIFFICULTIES

from . import difficulty as rule
from .checker import MIN_FONT_PX, MIN_SHAPE_PX, check, lookalikes
from .layout import Placer, around, union
from .questions import DIRECTIONS, KINDS, Description, QuestionSpec, choices, count_choices
from .scene import (
    BORDER_COLORS,
    PLATE_COLORS,
    SHAPE_COLORS,
    SHAPES,
    SIGN,
    SIGN_HEIGHT_PER_FONT,
    TEXT_ALPHABET,
    TEXT_DIGITS,
    TEXTURES,
    SceneObject,
    render,
    sign_size,
)

MAX_ATTEMPTS = 200
ASPECTS = (4 / 3, 3 / 2, 16 / 9, 2.0)
PORTRAIT_SHARE = 0.2
MIN_LONG_SIDE = 512
# First-view size bands (px) that aim at 0, 1 and 2 size points, kept inside the rule's cuts.
VIEW_BANDS = ((22.0, 34.0), (11.0, 18.5), (5.0, 9.0))
# Look-alike counts that aim at 0, 1 and 2 crowd points.
CROWD_BANDS = ((1, 4), (6, 11), (14, 22))
# (size points, crowd points) combinations that land in each class.
AIMS = {
    "easy": ((0, 0), (0, 1), (1, 0)),
    "medium": ((1, 1), (0, 2), (2, 0)),
    "hard": ((2, 1), (2, 2), (1, 2)),
}
SIGN_SHARE = 0.25  # of fillers
FILLERS = (12, 80)  # unrelated objects per scene, more in larger scenes


@dataclass
class SyntheticSample:
    """One generated item with everything known about its scene."""

    image: Image.Image
    question: str
    answer: str  # the option letter for multiple choice, else the value
    options: list[str]
    difficulty: str  # assigned by the rule from what was drawn
    kind: str
    target_bbox: list[float]  # xyxy original px; the union of targets for count/position
    objects: list[SceneObject]  # every drawn object (tags: target / lookalike / filler)
    distractor_boxes: list[list[float]]  # the look-alikes
    value: str = ""  # the open-ended answer (the option text for multiple choice)
    # targets in subject order; for position: the object asked about, then the reference object
    target_boxes: list[list[float]] = field(default_factory=list)
    view_px: float = 0.0  # smallest target's shorter side in the first view
    seed: int = 0
    attempts: int = 1

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


@dataclass
class _Plan:
    width: int
    height: int
    target_px: int  # original px of the target's shorter side (shape side or sign plate height)
    crowd: int  # look-alikes to draw


def _min_px(kind: str) -> int:
    return math.ceil(SIGN_HEIGHT_PER_FONT * MIN_FONT_PX) if kind == "text" else MIN_SHAPE_PX


def _plan(aim: str, kind: str, long_side: tuple[int, int], rng: random.Random) -> _Plan | None:
    """Image size, target size and crowd that aim at `aim` (None if this image size cannot)."""
    long = rng.randint(*long_side)
    short = round(long / rng.choice(ASPECTS))
    width, height = (short, long) if rng.random() < PORTRAIT_SHARE else (long, short)
    scale = rule.first_view_scale(width, height)
    min_px = _min_px(kind)
    feasible = [(s, c) for s, c in AIMS[aim] if rule.size_points(min_px * scale) >= s]  # can shrink to s
    if not feasible:
        return None
    size_pts, crowd_pts = rng.choice(feasible)
    lo, hi = VIEW_BANDS[size_pts]
    target_px = max(min_px, round(rng.uniform(lo, hi) / scale))
    return _Plan(width, height, target_px, rng.randint(*CROWD_BANDS[crowd_pts]))


def _text(rng: random.Random, numeric: bool) -> str:
    if numeric:
        return "".join(rng.choice(TEXT_DIGITS) for _ in range(rng.randint(2, 3)))
    return rng.choice(TEXT_ALPHABET) + "".join(
        rng.choice(TEXT_ALPHABET + TEXT_DIGITS) for _ in range(rng.randint(1, 2))
    )


def _mutate(text: str, rng: random.Random) -> str:
    """The same text with one character swapped for another of its class: the closest look-alike."""
    i = rng.randrange(len(text))
    pool = TEXT_DIGITS if text[i].isdigit() else TEXT_ALPHABET
    return text[:i] + rng.choice([c for c in pool if c != text[i]]) + text[i + 1 :]


def _sign(color: str, border: str, text: str, font_size: int) -> SceneObject:
    w, h = sign_size(text, font_size)
    return SceneObject(
        SIGN, color, [0.0, 0.0, float(w), float(h)], border=border, text=text, font_size=font_size
    )


def _shape(shape: str, color: str, pattern: str, px: int) -> SceneObject:
    return SceneObject(shape, color, [0.0, 0.0, float(px), float(px)], pattern=pattern)


def _font_for(px: float) -> int:
    return max(MIN_FONT_PX, round(px / SIGN_HEIGHT_PER_FONT))


def _random_object(rng: random.Random, px: float, sign: bool, text: str, numeric: bool) -> SceneObject:
    """Any object of about `px` shorter side; signs carry text in the shared style."""
    if sign:
        color = rng.choice(list(PLATE_COLORS))
        border = rng.choice([b for b in BORDER_COLORS if b != color])
        label = _mutate(text, rng) if text and rng.random() < 0.5 else _text(rng, numeric)
        return _sign(color, border, label, _font_for(px))
    return _shape(
        rng.choice(SHAPES), rng.choice(list(SHAPE_COLORS)), rng.choice(TEXTURES), max(MIN_SHAPE_PX, round(px))
    )


def _lookalike(d: Description, rng: random.Random, px: float, text: str, numeric: bool) -> SceneObject:
    """An object meeting some but not all of `d`'s constraints (signs always stay signs)."""
    cons = d.constraints()
    breakable = [k for k in cons if not (k == "shape" and cons[k] == SIGN)]
    broken = set(rng.sample(breakable, rng.randint(1, min(len(breakable), len(cons) - 1))))
    obj = _random_object(rng, px * rng.uniform(0.85, 1.2), d.shape == SIGN, text, numeric)
    values = {
        "shape": SHAPES,
        "color": list(PLATE_COLORS if obj.is_sign else SHAPE_COLORS),
        "pattern": TEXTURES,
        "border": list(BORDER_COLORS),
    }
    for k, v in cons.items():
        if k == "shape" and v == SIGN:
            continue
        setattr(obj, k, rng.choice([x for x in values[k] if x != v]) if k in broken else v)
    if obj.is_sign:
        obj.box = _sign(obj.color, obj.border, obj.text, obj.font_size).box
    return obj


@dataclass
class _Scene:
    """Objects being laid out for one attempt."""

    plan: _Plan
    rng: random.Random
    placer: Placer
    objects: list[SceneObject] = field(default_factory=list)

    def put(self, obj: SceneObject, tag: str, region: list[float] | None = None) -> bool:
        w, h = round(obj.box[2] - obj.box[0]), round(obj.box[3] - obj.box[1])
        box = self.placer.place(w, h, self.rng, region)
        if box is None:
            return False
        obj.box, obj.tags = box, [tag]
        self.objects.append(obj)
        return True

    def put_at(self, obj: SceneObject, tag: str, x: float, y: float) -> bool:
        w, h = obj.box[2] - obj.box[0], obj.box[3] - obj.box[1]
        box = [float(round(x)), float(round(y)), float(round(x) + w), float(round(y) + h)]
        if not self.placer.place_at(box):
            return False
        obj.box, obj.tags = box, [tag]
        self.objects.append(obj)
        return True


def _add_distractors(
    scene: _Scene, subjects: list[Description], text: str = "", numeric: bool = False
) -> bool:
    """Place the planned look-alikes (half near the first target) and then unrelated fillers."""
    rng, plan = scene.rng, scene.plan
    anchor = next(o for o in scene.objects if "target" in o.tags).box
    near = around(anchor, plan.target_px * 12)
    for i in range(plan.crowd):
        d = subjects[i % len(subjects)]
        for _ in range(20):
            obj = _lookalike(d, rng, plan.target_px, text, numeric)
            if not any(s.matches(obj) for s in subjects):
                break
        else:
            return False
        if not scene.put(obj, "lookalike", near if rng.random() < 0.5 else None):
            return False
    area = plan.width * plan.height
    n_fill = max(FILLERS[0], min(FILLERS[1], round(area / (plan.target_px * 25) ** 2)))
    for _ in range(n_fill):
        for _ in range(20):
            obj = _random_object(
                rng, plan.target_px * rng.uniform(0.7, 2.5), rng.random() < SIGN_SHARE, "", False
            )
            if not any(d.matches(obj) or d.shares(obj) for d in subjects):
                break
        else:
            continue
        scene.put(obj, "filler")  # a filler that does not fit is simply left out
    return True


def _build_attribute(scene: _Scene, asked: str, mc: bool) -> QuestionSpec | None:
    rng, px = scene.rng, scene.plan.target_px
    target = _shape(rng.choice(SHAPES), rng.choice(list(SHAPE_COLORS)), rng.choice(TEXTURES), px)
    if asked == "color":
        d = Description(shape=target.shape, pattern=target.pattern)
    else:
        d = Description(color=target.color, pattern=target.pattern)
    if not scene.put(target, "target") or not _add_distractors(scene, [d]):
        return None
    value = target.attr(asked)
    options: list[str] = []
    if mc:
        near = [o.attr(asked) for o in scene.objects if "lookalike" in o.tags and not o.is_sign]
        options = choices(value, near, list(SHAPE_COLORS) if asked == "color" else list(SHAPES), rng)
    return QuestionSpec(asked, [d], value, options)


def _build_text(scene: _Scene, mc: bool) -> QuestionSpec | None:
    rng = scene.rng
    numeric = rng.random() < 0.5
    color = rng.choice(list(PLATE_COLORS))
    target = _sign(
        color,
        rng.choice([b for b in BORDER_COLORS if b != color]),
        _text(rng, numeric),
        _font_for(scene.plan.target_px),
    )
    d = Description(shape=SIGN, color=target.color, border=target.border)
    if not scene.put(target, "target") or not _add_distractors(scene, [d], target.text, numeric):
        return None
    options: list[str] = []
    if mc:
        near = [o.text for o in scene.objects if "lookalike" in o.tags and o.is_sign]
        options = choices(target.text, near, [_mutate(target.text, rng) for _ in range(8)], rng)
    return QuestionSpec("text", [d], target.text, options, numeric=numeric)


def _build_count(scene: _Scene, mc: bool) -> QuestionSpec | None:
    rng, px = scene.rng, scene.plan.target_px
    n = rng.randint(2, 7)
    color, shape = rng.choice(list(SHAPE_COLORS)), rng.choice(SHAPES)
    pattern = rng.choice(TEXTURES) if rng.random() < 0.5 else None
    d = Description(shape=shape, color=color, pattern=pattern)
    first = _shape(shape, color, pattern or rng.choice(TEXTURES), px)
    if not scene.put(first, "target"):
        return None
    cluster = around(first.box, px * (3 + 2 * math.sqrt(n)))
    for _ in range(n - 1):
        size = round(px * rng.uniform(1.0, 1.3))
        if not scene.put(_shape(shape, color, pattern or rng.choice(TEXTURES), size), "target", cluster):
            return None
    if not _add_distractors(scene, [d]):
        return None
    return QuestionSpec("count", [d], str(n), count_choices(n, rng) if mc else [])


def _build_position(scene: _Scene, mc: bool) -> QuestionSpec | None:
    rng, px = scene.rng, scene.plan.target_px
    a = _shape(rng.choice(SHAPES), rng.choice(list(SHAPE_COLORS)), rng.choice(TEXTURES), px)
    if rng.random() < 0.5:
        plate = rng.choice(list(PLATE_COLORS))
        border = rng.choice([c for c in BORDER_COLORS if c != plate])
        b = _sign(plate, border, _text(rng, False), _font_for(px * rng.uniform(1.0, 1.4)))
        db = Description(shape=SIGN, color=b.color, border=b.border)
    else:
        b = _shape(
            rng.choice([s for s in SHAPES if s != a.shape]),
            rng.choice(list(SHAPE_COLORS)),
            "plain",
            round(px * rng.uniform(1.0, 1.4)),
        )
        db = Description(shape=b.shape, color=b.color)
    da = Description(shape=a.shape, color=a.color)
    if not scene.put(b, "target"):
        return None
    direction = rng.choice(DIRECTIONS)
    gap = px * rng.uniform(1.5, 4.0)
    jitter = gap * rng.uniform(-0.3, 0.3)
    cx, cy = (b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2
    x, y = {
        "left": (b.box[0] - gap - px, cy - px / 2 + jitter),
        "right": (b.box[2] + gap, cy - px / 2 + jitter),
        "above": (cx - px / 2 + jitter, b.box[1] - gap - px),
        "below": (cx - px / 2 + jitter, b.box[3] + gap),
    }[direction]
    if not scene.put_at(a, "target", x, y) or not _add_distractors(scene, [da, db]):
        return None
    return QuestionSpec(
        "position", [da, db], direction, choices(direction, [], list(DIRECTIONS), rng) if mc else []
    )


def _build(kind: str, scene: _Scene, mc: bool) -> QuestionSpec | None:
    if kind in ("color", "shape"):
        return _build_attribute(scene, kind, mc)
    if kind == "text":
        return _build_text(scene, mc)
    if kind == "count":
        return _build_count(scene, mc)
    return _build_position(scene, mc)


def check_args(difficulty: str | None, kind: str | None, long_side: tuple[int, int]) -> None:
    """Refuse impossible requests before any work starts."""
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise BadInputError(f"difficulty {difficulty!r}: use one of {', '.join(DIFFICULTIES)}")
    if kind is not None and kind not in KINDS:
        raise BadInputError(f"question kind {kind!r}: use one of {', '.join(KINDS)}")
    lo, hi = long_side
    if not MIN_LONG_SIDE <= lo <= hi:
        raise BadInputError(f"long side range {lo}:{hi}: need {MIN_LONG_SIDE} <= low <= high")
    largest = hi * round(hi / min(ASPECTS))
    if largest > max_image_pixels():  # every later stage would refuse such an image as a bomb
        raise BadInputError(
            f"long side {hi} makes images of up to {largest:,} pixels, above the limit of {max_image_pixels():,}; "
            f"lower --long-side or raise {MAX_PIXELS_ENV}"
        )


def make_sample(
    seed: int,
    *,
    difficulty: str | None = None,
    kind: str | None = None,
    long_side: tuple[int, int] = (2048, 8192),
    multiple_choice: bool | None = None,
) -> SyntheticSample:
    """One checked item; `difficulty` (if given) is guaranteed by regenerating until the rule agrees."""
    check_args(difficulty, kind, long_side)
    rng0 = random.Random(f"sample:{seed}")
    kind = kind or rng0.choice(KINDS)
    aim = (
        difficulty
        or rng0.choices(DIFFICULTIES, weights=[rule.RELEASED_TEST_SPLIT[d] for d in DIFFICULTIES])[0]
    )
    mc = rng0.random() < 0.5 if multiple_choice is None else multiple_choice
    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"attempt:{seed}:{attempt}")
        plan = _plan(aim, kind, long_side, rng)
        if plan is None:
            continue
        edge = max(4.0, plan.target_px * 0.5)
        scene = _Scene(
            plan, rng, Placer(plan.width, plan.height, gap=max(3.0, plan.target_px * 0.3), edge=edge)
        )
        spec = _build(kind, scene, mc)
        if spec is None or check(spec, scene.objects, plan.width, plan.height):
            continue
        boxes = [o.box for d in spec.subjects for o in scene.objects if d.matches(o)]  # subject order
        others = lookalikes(spec, scene.objects)
        px = rule.view_px(boxes, plan.width, plan.height)
        got = rule.classify(px, len(others))
        if difficulty is not None and got != difficulty:
            continue
        return SyntheticSample(
            image=render(plan.width, plan.height, scene.objects, rng.getrandbits(64)),
            question=spec.question,
            answer=spec.answer,
            options=spec.options,
            difficulty=got,
            kind=kind,
            target_bbox=union(boxes),
            objects=scene.objects,
            distractor_boxes=[o.box for o in others],
            value=spec.value,
            target_boxes=boxes,
            view_px=px,
            seed=seed,
            attempts=attempt + 1,
        )
    raise BadInputError(
        f"seed {seed}: could not make a {difficulty or aim} {kind} item with long side "
        f"{long_side[0]}:{long_side[1]} "
        f"in {MAX_ATTEMPTS} attempts; widen --long-side"
    )
