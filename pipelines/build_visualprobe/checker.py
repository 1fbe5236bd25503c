"""The unambiguity checker: proves a synthetic question has exactly one right answer in its scene.

It re-derives everything from the drawn objects, independently of how the generator meant them:
the description must match exactly one object (or, for counting, exactly the counted number), the
answer must be that object's attribute (or the clear relation between two objects), options must be
distinct with the answer once, targets must be large enough to read at full resolution, and no object
may overlap (hide) another. An empty list means the item is sound; anything else regenerates it.
"""

from __future__ import annotations

from .questions import QuestionSpec, relation
from .scene import SceneObject

MIN_SHAPE_PX = 16  # a shape and its pattern are still recognisable at full resolution
MIN_FONT_PX = 12  # sign text is still readable at full resolution

ASKED_ATTRIBUTE = {"color": "color", "shape": "shape", "text": "text"}


def targets(spec: QuestionSpec, objects: list[SceneObject]) -> list[SceneObject]:
    """The objects the question is about (every subject's matches)."""
    return [o for o in objects if any(d.matches(o) for d in spec.subjects)]


def lookalikes(spec: QuestionSpec, objects: list[SceneObject]) -> list[SceneObject]:
    """Objects that meet some but not all of a subject's constraints and are not themselves targets."""
    return [
        o
        for o in objects
        if not any(d.matches(o) for d in spec.subjects) and any(d.shares(o) for d in spec.subjects)
    ]


def _answer_problems(spec: QuestionSpec, objects: list[SceneObject]) -> list[str]:
    matched = [[o for o in objects if d.matches(o)] for d in spec.subjects]
    if spec.kind == "count":
        n = len(matched[0])
        if n == 0 or str(n) != spec.value:
            return [
                f"'{spec.subjects[0].phrase(plural=True)}' match {n} objects but the answer says {spec.value}"
            ]
        return []
    problems = [
        f"'{d.phrase()}' matches {len(m)} objects, not exactly one"
        for d, m in zip(spec.subjects, matched)
        if len(m) != 1
    ]
    if problems:
        return problems
    if spec.kind == "position":
        rel = relation(matched[0][0].box, matched[1][0].box)
        if rel != spec.value:
            return [f"relative position is {rel or 'unclear'}, answer says {spec.value}"]
        return []
    attribute = ASKED_ATTRIBUTE[spec.kind]
    if attribute in spec.subjects[0].constraints():
        return [f"the description gives the asked {attribute} away"]
    actual = matched[0][0].attr(attribute)
    if not actual or actual != spec.value:
        return [f"the target's {attribute} is {actual!r}, answer says {spec.value!r}"]
    return []


def _option_problems(spec: QuestionSpec) -> list[str]:
    if not spec.options:
        return []
    if len(set(spec.options)) != len(spec.options):
        return ["options repeat"]
    if spec.options.count(spec.value) != 1:
        return ["the answer is not exactly one of the options"]
    return []


def _legibility_problems(spec: QuestionSpec, objects: list[SceneObject]) -> list[str]:
    out = []
    for o in targets(spec, objects):
        if o.is_sign and o.font_size < MIN_FONT_PX:
            out.append(f"sign text {o.font_size}px is below {MIN_FONT_PX}px")
        elif not o.is_sign and o.short_side < MIN_SHAPE_PX:
            out.append(f"{o.shape} of {o.short_side:g}px is below {MIN_SHAPE_PX}px")
    return out


def _geometry_problems(objects: list[SceneObject], width: int, height: int) -> list[str]:
    out = []
    for i, a in enumerate(objects):
        x0, y0, x1, y1 = a.box
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height or x1 <= x0 or y1 <= y0:
            out.append(f"object {i} box {a.box} is outside the {width}x{height} image")
        for j in range(i + 1, len(objects)):
            b = objects[j].box
            if x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1:
                out.append(f"objects {i} and {j} overlap")
    return out


def check(spec: QuestionSpec, objects: list[SceneObject], width: int, height: int) -> list[str]:
    """Every reason the item could be ambiguous or wrong; empty when it is sound."""
    return (
        _answer_problems(spec, objects)
        + _option_problems(spec)
        + _legibility_problems(spec, objects)
        + _geometry_problems(objects, width, height)
    )
