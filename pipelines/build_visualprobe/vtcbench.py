"""VTC-Bench (github.com/cs-w0r1d/VTC-Bench, data/VTC-Bench.tsv; its images on the Hugging Face dataset
zzzhu/VTC-Bench): one tab-separated file, images as paths relative to --images.

    index id                   category  image                                       question answer A B C D
    2     attention_focusing_2 attention images/attention_focusing/attention_focus...  How ...  B      6 5 3 4
    1     attention_focusing_1 attention images/attention_focusing/attention_focus...  Read ... 光陽機車

A row with options is multiple choice (its answer a letter); one with none is open-ended (OCR, math: the
answer text). `id` names the item and `category` (attention, chart, color, counting, math, measure, ocr,
perceptual, spatial) is its `kind`. VTC-Bench_GTToolChain.tsv (the same rows plus the reference tool chain)
reads the same. The benchmark was made for OpenCV tool chains; evaluated here, a model has the zoom tool only.
"""

from __future__ import annotations

import csv
from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.records import ProbeItem

from .hrbench import _options
from .image_files import import_images
from .mmerw import _ID_CHARS_RE
from .result import Built, skip

SOURCE = "vtcbench"
REQUIRED = ("id", "category", "image", "question", "answer", "A")


def _rows(path: Path) -> list[dict[str, str]]:
    """The TSV's rows, each cell stripped; a file without VTC-Bench's columns (another benchmark's file,
    JSON) is one line."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter="\t")
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise BadInputError(
                    f"{path}: not a VTC-Bench TSV (no column {', '.join(missing)}); expected the "
                    "tab-separated VTC-Bench.tsv with index, id, category, image, question, answer, A-D"
                )
            # a short row's missing cells are None and a long row's extra ones sit under None: plain text only
            return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such VTC-Bench file") from None
    except (csv.Error, UnicodeDecodeError, OSError) as e:
        raise BadInputError(f"{path}: not a readable TSV ({e.__class__.__name__}: {e})") from None


def _item_ids(path: Path, rows: list[dict[str, str]]) -> list[str]:
    """Each row's item id from its `id`; an empty or repeated id is one line naming the rows."""
    ids: dict[str, int] = {}  # item id -> its row (1-based, after the header)
    for n, row in enumerate(rows, start=1):
        item_id = f"{SOURCE}-{_ID_CHARS_RE.sub('-', row['id']).strip('-')}"
        if item_id == f"{SOURCE}-":
            raise BadInputError(f"{path}: row {n}: id is empty; each row needs an id, which names its item")
        if item_id in ids:
            raise BadInputError(
                f"{path}: id {row['id']!r} repeats (rows {ids[item_id]} and {n}); each row needs its own id"
            )
        ids[item_id] = n
    return list(ids)


def import_vtcbench(
    out: Path, path: Path, images_root: Path, *, limit: int | None, workers: int, max_pixels: int
) -> Built:
    """VTC-Bench's TSV (images under `images_root`) into the test split of the dataset dir at `out`."""
    if not Path(images_root).is_dir():
        raise BadInputError(f"--images {images_root}: not a directory (where the TSV's image paths start)")
    rows = _rows(Path(path))[:limit]
    item_ids = _item_ids(Path(path), rows)
    params = {"annotations": str(path), "images": str(images_root), "limit": limit}
    built = Built(splits={"train": [], "test": []}, params=params)
    rels = [r["image"] for r in rows]
    images = import_images(Path(images_root), rels, out, workers=workers, max_pixels=max_pixels)
    for item_id, row in zip(item_ids, rows):
        image = images[row["image"]]
        if isinstance(image, str):
            built.skipped.append(skip("bad image", image, image=row["image"], item=item_id))
            continue
        copy, size = image
        built.splits["test"].append(ProbeItem(
            id=item_id, image=copy, question=row["question"], answer=row["answer"], options=_options(row),
            difficulty="unknown", width=size[0], height=size[1], source=SOURCE, kind=row["category"],
        ))  # fmt: skip
    return built
