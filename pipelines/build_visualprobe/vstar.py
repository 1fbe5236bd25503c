"""V* Bench (penghao-wu/vstar, HF craigwu/vstar_bench): one JSON beside each image, per category folder.

    vstar_bench/direct_attributes/sa_4690.jpg + sa_4690.json
    vstar_bench/relative_position/sa_2337.jpg + sa_2337.json
    {"target_object": ["cup"], "bbox": [[x, y, w, h]], "question": "...", "options": ["right", "wrong", ...]}

The annotations always put the correct option first, so a model that favours "A" would look perfect: the
options are shuffled with a seed (per item, so a subset or another file order gives the same order), and
the manifest records each item's order (`option_order`: shown option i is the annotation's options[order[i]]).
The union of the target boxes, each clipped to the image, becomes `target_bbox` (the region a search must
find; the scripted teacher can evaluate offline on it). A box with no area inside the image is left out of
the union and listed in excluded.jsonl (the item itself is kept).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError
from minio3_data.protocol import OPTION_LETTERS
from minio3_data.records import ProbeItem

from .fields import get, load_json, numbers
from .image_files import import_images
from .layout import ObjectBox, union
from .result import Built, skip

SOURCE = "vstar"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
ORDER_RULE = (
    "shown option i is the annotation's options[option_order[id][i]]; the annotation's options[0] is the answer"
)


def option_order(n: int, seed: int, item_id: str) -> list[int]:
    """The shuffled order of an item's n options, from the seed and the item alone."""
    order = list(range(n))
    random.Random(f"{SOURCE}\0{seed}\0{item_id}").shuffle(order)
    return order


def _annotations(root: Path) -> list[tuple[str, Path, Path | None]]:
    """(category, annotation, its image or None) for every annotation under root's category folders."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for ann in sorted(folder.glob("*.json")):
            image = next(
                (
                    ann.with_suffix(s)
                    for s in IMAGE_SUFFIXES + tuple(x.upper() for x in IMAGE_SUFFIXES)
                    if ann.with_suffix(s).is_file()
                ),
                None,
            )
            found.append((folder.name, ann, image))
    if not found:
        raise BadInputError(
            f"{root}: no V* annotations found; expected category folders (direct_attributes/, "
            "relative_position/) holding <name>.json beside each image"
        )
    return found


def _read(path: Path) -> dict[str, Any]:
    """One annotation, checked: a question, two or more text options, optional [x, y, w, h] boxes."""
    ann = load_json(path)
    question = get(path, "", ann, "question", (str,))
    options = get(path, "", ann, "options", (list,))
    if len(options) < 2 or not all(isinstance(o, str) for o in options):
        raise BadInputError(
            f"{path}: options: expected a list of two or more strings (the first is the answer)"
        )
    boxes = [numbers(path, f"bbox[{i}]", b, 4) for i, b in enumerate(get(path, "", ann, "bbox", (list,), []))]
    return {"path": path, "question": question, "options": options, "boxes": boxes}


def target_box(boxes: list[list[float]], size: tuple[int, int]) -> tuple[ObjectBox | None, list[int]]:
    """The union of the [x, y, w, h] boxes as xyxy, each clipped to the image (None when none is left), and the
    positions of the boxes with no area inside the image, left out of it."""
    w, h = size
    inside: list[ObjectBox] = []
    outside: list[int] = []
    for i, (x, y, bw, bh) in enumerate(boxes):
        clipped = [max(0.0, x), max(0.0, y), min(float(w), x + bw), min(float(h), y + bh)]
        if clipped[0] < clipped[2] and clipped[1] < clipped[3]:
            inside.append(clipped)
        else:
            outside.append(i)
    return (union(inside) if inside else None), outside


def import_vstar(
    out: Path, root: Path, *, seed: int, limit: int | None, workers: int, max_pixels: int
) -> Built:
    """V* under `root` into the test split of the dataset dir being built at `out`."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(
            f"{root}: --from must be the V* Bench folder (direct_attributes/, relative_position/)"
        )
    entries = _annotations(root)[:limit]
    built = Built(splits={"train": [], "test": []}, params={"from": str(root), "seed": seed, "limit": limit})
    rows = []
    for category, ann, image in entries:
        item_id = f"{SOURCE}-{category}-{ann.stem}"
        if image is None:
            built.skipped.append(skip("missing image", f"{ann}: no image beside it", item=item_id))
            continue
        rows.append((item_id, category, _read(ann), image.relative_to(root).as_posix()))
    images = import_images(root, [rel for *_, rel in rows], out, workers=workers, max_pixels=max_pixels)
    orders: dict[str, list[int]] = {}
    for item_id, category, ann, rel in rows:
        image = images[rel]
        if isinstance(image, str):
            built.skipped.append(skip("bad image", image, image=rel, item=item_id))
            continue
        copy, size = image
        order = orders[item_id] = option_order(len(ann["options"]), seed, item_id)
        target, outside = target_box(ann["boxes"], size)
        built.skipped += [
            skip("box outside image", f"{ann['path']}: bbox[{i}] {ann['boxes'][i]} has no area inside the "
                 f"{size[0]}x{size[1]} image; the item is kept without that box", item=item_id)
            for i in outside
        ]  # fmt: skip
        built.splits["test"].append(ProbeItem(
            id=item_id, image=copy, question=ann["question"], answer=OPTION_LETTERS[order.index(0)],
            options=[ann["options"][i] for i in order], difficulty="unknown",
            target_bbox=target, width=size[0], height=size[1], source=SOURCE,
            kind=category,
        ))  # fmt: skip
    built.notes = {"option_order_rule": ORDER_RULE, "option_order": orders}
    return built
