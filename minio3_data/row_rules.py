"""What a dataset row may be, in one place: the build never writes a row that breaks these rules, synthesis
skips one when it reads the dataset, and export excludes a trajectory whose row breaks them.

Each problem is a short phrase that starts with the field it is about, so one row's problems join into one
line (an exclusion's detail) and the first one's field gives the exclusion its reason ("bad target_bbox").
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from typing import Any

from .display import first_view_size
from .exclusions import Exclusion
from .fsutil import leaves_its_dir
from .protocol import OPTION_LETTERS, is_number
from .records import REQUIRED_COLUMNS, ProbeItem

FIELDS = {f.name for f in fields(ProbeItem)} | {"width/height"}  # what a problem can start with


def _options_problems(options: list[Any], answer: Any) -> list[str]:
    if not options:
        return []
    if not all(isinstance(o, str) and o.strip() for o in options):
        return ["options: an option is empty"]
    if not 2 <= len(options) <= len(OPTION_LETTERS):
        return [f"options: {len(options)} of them; a multiple-choice row needs 2 to {len(OPTION_LETTERS)}"]
    problems = []
    if len({o.strip().casefold() for o in options}) < len(options):
        problems.append("options: the same option appears more than once")
    letters = tuple(OPTION_LETTERS[: len(options)])
    if answer not in letters:
        problems.append(f"answer {str(answer)[:20]!r}: not an option letter ({letters[0]}-{letters[-1]})")
    return problems


def _bbox_problem(box: Any, width: int, height: int) -> str | None:
    if box is None:
        return None
    if not isinstance(box, list) or len(box) != 4 or not all(is_number(v) for v in box):
        return f"target_bbox {str(box)[:60]}: not 4 numbers"
    if not all(math.isfinite(v) for v in box):
        return f"target_bbox {box}: not finite"
    x0, y0, x1, y1 = box
    if not (x0 < x1 and y0 < y1):
        return f"target_bbox {box}: no area (needs x0 < x1 and y0 < y1)"
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        return f"target_bbox {box}: outside the {width}x{height} image"
    return None


def row_problems(item: ProbeItem, image_size: tuple[int, int] | None = None) -> list[str]:
    """Why `item` cannot be used (empty: it can). `image_size`, the image file's (width, height), is given
    where the image is opened anyway; the row's own width and height must then agree with it."""
    texts = {name: getattr(item, name) for name in REQUIRED_COLUMNS}  # the columns a row must have, non-empty
    problems = [f"{name}: empty" for name, v in texts.items() if not (isinstance(v, str) and v.strip())]
    if isinstance(item.image, str) and item.image.strip() and leaves_its_dir(item.image):
        problems.append(f"image {item.image[:80]!r}: not a path inside the dataset dir (absolute, or with '..')")
    problems += _options_problems(item.options, item.answer)
    w, h = item.width, item.height
    if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
        return [*problems, f"width/height {w}x{h}: not positive integers"]
    if image_size is not None and (w, h) != tuple(image_size):
        problems.append(f"width/height {w}x{h} but the image is {image_size[0]}x{image_size[1]}")
    try:  # an image the released loader would drop cannot be shown to a model as it was trained
        first_view_size(w, h)
    except ValueError as e:
        problems.append(f"width/height {w}x{h}: {e}")
    bbox = _bbox_problem(item.target_bbox, w, h)
    return [*problems, bbox] if bbox else problems


def row_id(item: ProbeItem, index: int) -> str:
    """How an excluded row is named: its id, or its position when it has none."""
    return item.id if isinstance(item.id, str) and item.id.strip() else f"row {index}"


def row_reason(problems: list[str]) -> str:
    """The category an unusable row is counted under, from its first problem: "empty question",
    "bad target_bbox", or "bad row" for a problem that names no field."""
    first = problems[0]
    field = re.split(r"[\s:]", first, maxsplit=1)[0]
    if field not in FIELDS:
        return "bad row"
    return f"empty {field}" if first == f"{field}: empty" else f"bad {field}"


def usable_items(items: list[ProbeItem], stage: str) -> tuple[list[ProbeItem], list[Exclusion]]:
    """The rows that pass every rule, and an exclusion of `stage` for each row that does not."""
    usable, rejected = [], []
    for k, item in enumerate(items):
        problems = row_problems(item)
        if problems:
            rejected.append(Exclusion(stage, row_id(item, k), row_reason(problems), "; ".join(problems)))
        else:
            usable.append(item)
    return usable, rejected
