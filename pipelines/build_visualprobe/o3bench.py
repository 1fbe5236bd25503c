"""O3-Bench (InSight-o3; huggingface.co/datasets/m-Just/O3-Bench): test/metadata.jsonl beside test/images/.

    {"file_name": "images/map/campus_x.jpg", "subset": "map", "question": "...",
     "options": "A. Broadway\\nB. 120th Street\\n...\\nF. No right choice", "answer": "A",
     "explanation": "...", "target_layouts": [2, 4], "layout_infos": {"2": {"layout_id": 2,
     "bbox": [x0, y0, x1, y1], ...}, ...}, "img_width": 4250, "img_height": 5500}

Image paths are relative to the folder of metadata.jsonl (--images). `image` may stand for `file_name` and
`category` for `subset` (the release's evaluation accepts both); `options` is absent for open questions. The
record's position in the file is its id (the release's `sample_index`), the subset (chart / map) its `kind`.
The union of the target layouts' boxes, each clipped to the image, is `target_bbox`: the regions the
multi-hop answer needs, so on a question that spans the image it covers most of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError
from minio3_data.records import ProbeItem

from .fields import get, numbers
from .image_files import import_images
from .jsonl import jsonl_records
from .options import DOT_LETTERED, split_lettered
from .result import Built, skip
from .vstar import target_box

SOURCE = "o3bench"


def _one_of(path: Path, where: str, r: dict[str, Any], keys: tuple[str, str]) -> str:
    """The string under the first of `keys` the record has (the release reads either name)."""
    key = next((k for k in keys if k in r), keys[0])
    return get(path, where, r, key, (str,))


def _layout_boxes(path: Path, where: str, r: dict[str, Any]) -> list[list[float]]:
    """The xyxy boxes of the record's target layouts (none when it names none)."""
    targets = get(path, where, r, "target_layouts", (list,), [])
    infos = get(path, where, r, "layout_infos", (dict,), {}) if targets else {}
    boxes = []
    for t in targets:
        info = infos.get(str(t))
        if not isinstance(info, dict):
            raise BadInputError(
                f"{path}: {where}.target_layouts: layout {t!r} is not in layout_infos, which needs "
                f"\"{t}\": {{\"bbox\": [x0, y0, x1, y1]}}"
            )
        boxes.append(numbers(path, f"{where}.layout_infos.{t}.bbox", info.get("bbox"), 4))
    return boxes


def _read(path: Path) -> list[dict[str, Any]]:
    """Every record, checked; a record of the wrong shape stops the import naming its line and field."""
    out = []
    for i, (where, r) in enumerate(jsonl_records(path, "O3-Bench question")):
        options = get(path, where, r, "options", (str, type(None)), None)
        out.append({
            "where": where, "index": i, "image": _one_of(path, where, r, ("file_name", "image")),
            "kind": _one_of(path, where, r, ("subset", "category")).strip(),
            "question": get(path, where, r, "question", (str,)).strip(),
            "choices": options.strip().splitlines() if options and options.strip() else [],
            "answer": get(path, where, r, "answer", (str,)).strip(),
            "boxes": _layout_boxes(path, where, r),
        })  # fmt: skip
    return out


def import_o3bench(
    out: Path, annotations: Path, images_root: Path, *, limit: int | None, workers: int, max_pixels: int
) -> Built:
    """O3-Bench's metadata.jsonl (images under `images_root`) into the test split of the dataset dir at
    `out`."""
    if not Path(images_root).is_dir():
        raise BadInputError(f"--images {images_root}: not a directory (the folder holding metadata.jsonl)")
    records = _read(Path(annotations))[:limit]
    params = {"annotations": str(annotations), "images": str(images_root), "limit": limit}
    built = Built(splits={"train": [], "test": []}, params=params)
    images = import_images(
        Path(images_root), [r["image"] for r in records], out, workers=workers, max_pixels=max_pixels
    )
    for r in records:
        item_id = f"{SOURCE}-{r['index']:04d}"
        image = images[r["image"]]
        where = f"{annotations}: {r['where']}.options"
        options = split_lettered(r["choices"], DOT_LETTERED, where, "{letter}. <option>")
        if isinstance(image, str) or isinstance(options, str):
            why = ("bad image", image) if isinstance(image, str) else ("bad options", options)
            built.skipped.append(skip(*why, image=r["image"], item=item_id))
            continue
        copy, size = image
        target, outside = target_box([[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in r["boxes"]], size)
        built.skipped += [
            skip("box outside image", f"{annotations}: {r['where']}: target layout box {r['boxes'][i]} has no area "
                 f"inside the {size[0]}x{size[1]} image; the item is kept without it", item=item_id)
            for i in outside
        ]  # fmt: skip
        built.splits["test"].append(ProbeItem(
            id=item_id, image=copy, question=r["question"], answer=r["answer"], options=options,
            difficulty="unknown", target_bbox=target, width=size[0], height=size[1], source=SOURCE,
            kind=r["kind"],
        ))  # fmt: skip
    return built
