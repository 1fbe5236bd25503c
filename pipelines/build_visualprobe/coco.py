"""--source coco: template questions that COCO-format detection boxes can answer.

Works with COCO, Objects365, LVIS and SA-1B exports (same JSON: images, annotations, categories).
Per image it picks small instances (tiny in the 2 MP first view) and writes at most one question of
each kind, only when the boxes prove the answer:
  count    - a category whose every instance is small, 2..12 of them, no crowd/degenerate boxes;
  category - which of four categories is in a named cell of a 3x3 grid: the target lies wholly in the
             cell, and no box of the three other categories touches it;
  position - two categories with exactly one instance each, in a clear left/right/above/below relation.
A category LVIS marks as not exhaustively annotated in an image is never used there. Look-alikes are
other instances of a target's category or supercategory. Images go wholly to test or to train.
"""

from __future__ import annotations

import contextlib
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.records import ProbeItem

from ..parallel import ordered_map
from . import difficulty as rule
from .fields import get, load_json, numbers
from .image_files import check_image, copy_image, image_task_name
from .layout import ObjectBox, union
from .questions import NUM_OPTIONS, answer_for, choices, count_choices, position_question, relation
from .result import Built, skip

SMALL_VIEW_PX = 32.0  # small: shorter side in the first view below this ...
MIN_BOX_PX = 8.0  # ... but at least this many original pixels, so a zoom shows something
MAX_COUNT = 12
EDGE_SLACK_PX = 1.0  # a box may overshoot its image by rounding; by more, it is a broken annotation
GRID_CELLS = (
    ("top-left", "top-middle", "top-right"),
    ("middle-left", "center", "middle-right"),
    ("bottom-left", "bottom-middle", "bottom-right"),
)
IRREGULAR_PLURALS = {
    "person": "people",
    "mouse": "mice",
    "sheep": "sheep",
    "deer": "deer",
    "fish": "fish",
    "knife": "knives",
    "man": "men",
    "woman": "women",
    "child": "children",
    "goose": "geese",
    "foot": "feet",
    "leaf": "leaves",
    "skis": "skis",
    "scissors": "scissors",
    "glasses": "glasses",
    "jeans": "jeans",
    "shelf": "shelves",
}


@dataclass
class Instance:
    category: int
    box: ObjectBox  # xyxy original px
    crowd: bool


@dataclass
class Picture:
    id: str
    file_name: str
    width: int
    height: int
    instances: list[Instance] = field(default_factory=list)
    unreliable: set[int] = field(
        default_factory=set
    )  # categories with crowd/degenerate boxes or not exhaustive


@dataclass
class Category:
    name: str
    supercategory: str


@dataclass
class Candidate:
    kind: str
    question: str
    value: str
    options: list[str]
    boxes: list[ObjectBox]
    lookalikes: int


def plural(name: str) -> str:
    """English plural of a category name ("traffic light" -> "traffic lights", "bus" -> "buses")."""
    head, _, last = name.rpartition(" ")
    if last in IRREGULAR_PLURALS:
        word = IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        word = last + "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def _in_image(box: ObjectBox, pic: Picture) -> ObjectBox | None:
    """`box` clipped to its image when it overshoots by rounding only; None when it reaches outside (a broken
    annotation: a count or a position it took part in could not be trusted)."""
    x0, y0, x1, y1 = box
    s = EDGE_SLACK_PX
    if x0 < -s or y0 < -s or x1 > pic.width + s or y1 > pic.height + s:
        return None
    return [max(x0, 0.0), max(y0, 0.0), min(x1, float(pic.width)), min(y1, float(pic.height))]


def load_coco(path: Path) -> tuple[list[Picture], dict[int, Category], dict[str, int]]:
    """Parse and validate a COCO-format file; returns pictures, categories and how many boxes were
    unreliable (degenerate, or reaching outside their image): their category is not used in that image."""
    data = load_json(path)
    if not isinstance(data, dict):
        raise BadInputError(f"{path}: top level must be an object with images, annotations and categories")
    categories = {}
    for i, c in enumerate(get(path, "", data, "categories", (list,))):
        cid = get(path, f"categories[{i}]", c, "id", (int,))
        name = get(path, f"categories[{i}]", c, "name", (str,)).replace("_", " ").strip()
        categories[cid] = Category(
            name, get(path, f"categories[{i}]", c, "supercategory", (str,), default="")
        )
    pictures: dict[object, Picture] = {}
    for i, im in enumerate(get(path, "", data, "images", (list,))):
        where = f"images[{i}]"
        pid = get(path, where, im, "id", (int, str))
        name = get(path, where, im, "file_name", (str,), default=None)
        if name is None:  # LVIS names images by URL only
            name = get(path, where, im, "coco_url", (str,)).rsplit("/", 1)[-1]
        w, h = get(path, where, im, "width", (int,)), get(path, where, im, "height", (int,))
        if w <= 0 or h <= 0:
            raise BadInputError(f"{path}: {where}.width/height: must be positive, got {w}x{h}")
        skipped = get(path, where, im, "not_exhaustive_category_ids", (list,), default=[])
        pictures[pid] = Picture(str(pid), name, w, h, unreliable=set(skipped))
    unreliable = {"degenerate": 0, "outside_image": 0}
    for i, a in enumerate(get(path, "", data, "annotations", (list,))):
        where = f"annotations[{i}]"
        pic = pictures.get(get(path, where, a, "image_id", (int, str)))
        if pic is None:
            raise BadInputError(f"{path}: {where}.image_id: {a['image_id']!r} is not in images")
        cid = get(path, where, a, "category_id", (int,))
        if cid not in categories:
            raise BadInputError(f"{path}: {where}.category_id: {cid} is not in categories")
        x, y, w, h = numbers(path, f"{where}.bbox", get(path, where, a, "bbox", (list,)), 4)
        crowd = bool(get(path, where, a, "iscrowd", (int,), default=0))
        box = _in_image([x, y, x + w, y + h], pic)
        if w <= 0 or h <= 0 or box is None or crowd:
            unreliable["degenerate" if w <= 0 or h <= 0 else "outside_image"] += not crowd
            pic.unreliable.add(cid)
        pic.instances.append(Instance(cid, box or [x, y, x + w, y + h], crowd))
    return list(pictures.values()), categories, unreliable


def _small(box: ObjectBox, scale: float) -> bool:
    short = min(box[2] - box[0], box[3] - box[1])
    return short >= MIN_BOX_PX and short * scale < SMALL_VIEW_PX


def _lookalikes(pic: Picture, cats: dict[int, Category], targets: list[Instance]) -> int:
    ids = {t.category for t in targets}
    supers = {cats[c].supercategory for c in ids} - {""}
    return sum(
        1
        for o in pic.instances
        if not any(o is t for t in targets)
        and (o.category in ids or cats[o.category].supercategory in supers)
    )


def _by_category(pic: Picture) -> dict[int, list[Instance]]:
    out: dict[int, list[Instance]] = defaultdict(list)
    for inst in pic.instances:
        out[inst.category].append(inst)
    return dict(sorted(out.items()))


def _count(pic: Picture, cats: dict[int, Category], scale: float, rng: random.Random) -> Candidate | None:
    eligible = [
        insts
        for c, insts in _by_category(pic).items()
        if c not in pic.unreliable
        and 2 <= len(insts) <= MAX_COUNT
        and all(_small(i.box, scale) for i in insts)
    ]
    if not eligible:
        return None
    insts = rng.choice(eligible)
    n = len(insts)
    options = count_choices(n, rng) if rng.random() < 0.5 else []
    question = f"How many {plural(cats[insts[0].category].name)} are there in the image?"
    return Candidate(
        "count", question, str(n), options, [i.box for i in insts], _lookalikes(pic, cats, insts)
    )


def _cell(box: ObjectBox, pic: Picture) -> tuple[int, int] | None:
    """The 3x3 grid cell wholly containing `box`, or None when it straddles a line."""
    cw, ch = pic.width / 3, pic.height / 3
    col, row = int(box[0] // cw), int(box[1] // ch)
    inside = box[2] <= (col + 1) * cw and box[3] <= (row + 1) * ch
    return (row, col) if inside and 0 <= row < 3 and 0 <= col < 3 else None


def _category(pic: Picture, cats: dict[int, Category], scale: float, rng: random.Random) -> Candidate | None:
    groups = _by_category(pic)
    usable = [
        (len(groups[i.category]), rng.random(), k, i)
        for k, i in enumerate(pic.instances)
        if not i.crowd and i.category not in pic.unreliable and _small(i.box, scale) and _cell(i.box, pic)
    ]
    for _, _, _, target in sorted(usable, key=lambda u: (-u[0], u[1], u[2])):  # most same-category first
        row, col = _cell(target.box, pic)  # type: ignore[misc]
        cw, ch = pic.width / 3, pic.height / 3
        cell = [col * cw, row * ch, (col + 1) * cw, (row + 1) * ch]
        touching = {
            i.category
            for i in pic.instances
            if i.box[0] < cell[2] and cell[0] < i.box[2] and i.box[1] < cell[3] and cell[1] < i.box[3]
        }
        absent = [c for c in groups if c not in touching and c not in pic.unreliable]
        absent.sort(key=lambda c: (-len(groups[c]), cats[c].name))
        names = list(dict.fromkeys(cats[c].name for c in absent))
        name = cats[target.category].name
        if len([n for n in names if n != name]) < NUM_OPTIONS - 1:
            continue
        options = choices(name, [n for n in names if n != name][: NUM_OPTIONS - 1], [], rng)
        cell_name = GRID_CELLS[row][col]
        question = f"The image is divided into a 3x3 grid. Which of these objects is in the {cell_name} cell?"
        return Candidate("category", question, name, options, [target.box], _lookalikes(pic, cats, [target]))
    return None


def _position(pic: Picture, cats: dict[int, Category], scale: float, rng: random.Random) -> Candidate | None:
    singles = [
        insts[0]
        for c, insts in _by_category(pic).items()
        if len(insts) == 1 and c not in pic.unreliable and _small(insts[0].box, scale)
    ]
    names = Counter(cats[i.category].name for i in singles)
    singles = [i for i in singles if names[cats[i.category].name] == 1]  # two ids may share one name
    pairs = [(a, b) for a in singles for b in singles if a is not b and relation(a.box, b.box)]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    value = relation(a.box, b.box) or ""
    options = choices(value, [], ["left", "right", "above", "below"], rng) if rng.random() < 0.5 else []
    question = position_question(cats[a.category].name, cats[b.category].name, bool(options))
    return Candidate("position", question, value, options, [a.box, b.box], _lookalikes(pic, cats, [a, b]))


def candidates(pic: Picture, cats: dict[int, Category], seed: int) -> list[Candidate]:
    """At most one checked question of each kind about this picture."""
    rng = random.Random(f"coco:{seed}:{pic.id}")
    scale = rule.first_view_scale(pic.width, pic.height)
    found = (
        _count(pic, cats, scale, rng),
        _category(pic, cats, scale, rng),
        _position(pic, cats, scale, rng),
    )
    return [c for c in found if c is not None]


def _item(pic: Picture, c: Candidate, image: str) -> ProbeItem:
    return ProbeItem(
        id=f"coco-{pic.id}-{c.kind}",
        image=image,
        question=c.question,
        answer=answer_for(c.value, c.options),
        options=c.options,
        difficulty=_difficulty(pic, c),
        target_bbox=union(c.boxes),
        target_boxes=c.boxes,
        width=pic.width,
        height=pic.height,
        source="coco",
        kind=c.kind,
    )


def _difficulty(pic: Picture, c: Candidate) -> str:
    return rule.classify(rule.view_px(c.boxes, pic.width, pic.height), c.lookalikes)


def _fill(
    out: Path,
    images: Path,
    usable: list[tuple[Picture, list[Candidate]]],
    checked: Iterator[tuple[int, int] | str],
    need: dict[str, int],
    train: int,
) -> Built:
    """Assign whole images to test (while a class quota has room) or train; copy the images used."""
    built = Built(splits={"train": [], "test": []}, params={})
    for (pic, cands), size in zip(usable, checked):
        if sum(need.values()) == 0 and len(built.splits["train"]) >= train:
            break
        if isinstance(size, str):
            built.skipped.append(skip("bad image", size, image=pic.file_name))
            continue
        if size != (pic.width, pic.height):
            detail = f"annotations say {pic.width}x{pic.height} but the image is {size[0]}x{size[1]}"
            built.skipped.append(skip("image size mismatch", detail, image=pic.file_name))
            continue
        chosen = []
        for c in cands:
            difficulty = _difficulty(pic, c)
            if need[difficulty] > 0:
                need[difficulty] -= 1
                chosen.append(c)
        split = "test" if chosen else "train"
        if not chosen:
            chosen = cands[: train - len(built.splits["train"])]
            if not chosen:
                continue
        image = copy_image(images, pic.file_name, out)
        built.splits[split] += [_item(pic, c, image) for c in chosen]
    return built


def build_coco(
    out: Path, *, images: Path, annotations: Path, train: int, test: int, seed: int, workers: int, max_pixels: int
) -> Built:
    """Pick items image by image in a seeded order until the test quotas and the train count are met."""
    if not Path(images).is_dir():
        raise BadInputError(
            f"{images}: --images must be the directory the annotations' file_name values are relative to"
        )
    pictures, cats, unreliable = load_coco(annotations)
    order = sorted(pictures, key=lambda p: p.id)
    random.Random(f"coco-order:{seed}").shuffle(order)
    usable = [(p, cs) for p in order if (cs := candidates(p, cats, seed))]
    need = rule.quotas(test)
    checked = ordered_map(
        check_image, [(str(images), p.file_name, max_pixels) for p, _ in usable], workers, "coco images",
        name=image_task_name,
    )
    with contextlib.closing(checked):  # stopping early ends the worker pool
        built = _fill(out, Path(images), usable, checked, need, train)
    built.params = {
        "seed": seed,
        "train": train,
        "test": test,
        "annotations": str(annotations),
        "images": str(images),
        "small_view_px": SMALL_VIEW_PX,
        "min_box_px": MIN_BOX_PX,
        "max_count": MAX_COUNT,
        "max_pixels": max_pixels,
    }
    built.notes = {
        "test_quotas": rule.quotas(test),
        "test_shortfall": {d: n for d, n in need.items() if n},
        "train_shortfall": max(0, train - len(built.splits["train"])),
        "pictures": {"total": len(pictures), "with_questions": len(usable)},
        "unreliable_boxes": unreliable,
    }
    return built
