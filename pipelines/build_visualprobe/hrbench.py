"""HR-Bench 4K / 8K (DreamMr/HR-Bench): one VLMEvalKit TSV per version, images embedded as base64.

    index  question  answer  A  B  C  D  category  cycle_category  image

Each question appears once per option cycle (its options rotated, `cycle_category` naming the cycle), and the
benchmark averages accuracy over the cycles. The copies stay rows of their own (each is asked as written),
sharing a `question_group` (the image and the question text), so evaluation scores them as one question
with its cycles. An `image` cell that holds another row's `index` instead of base64 (VLMEvalKit's way of not
repeating an image) is resolved to that row's image.

The file is streamed: one row's image in memory at a time, written into the dataset dir by content hash.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import re
import sys
from collections import Counter
from pathlib import Path
from typing import IO

from minio3_data.errors import BadInputError
from minio3_data.protocol import OPTION_LETTERS
from minio3_data.records import ProbeItem

from ..parallel import ordered_map
from .image_files import check_image, image_task_name, save_image_bytes
from .result import Built, skip

REQUIRED = ("index", "question", "answer", "A", "B", "image")
REFERENCE_CHARS = 64  # an image cell this short is another row's index, never base64 of an image
_VERSION_RE = re.compile(r"(\d+)k", re.IGNORECASE)


def source_name(path: Path) -> str:
    """hrbench-4k / hrbench-8k from the file name (hr_bench_4k.tsv), else hrbench."""
    m = _VERSION_RE.search(path.stem)
    return f"hrbench-{m.group(1)}k" if m else "hrbench"


def _open(path: Path) -> IO[str]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # an 8K image is tens of MB of base64 in one cell
    try:
        return open(path, newline="", encoding="utf-8-sig")  # a BOM some editors write is not a column name
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such HR-Bench file") from None


def _reader(f: IO[str], path: Path) -> csv.DictReader:
    """The TSV's rows; a file without HR-Bench's columns (another benchmark's file, JSON) is one line."""
    reader = csv.DictReader(f, delimiter="\t")
    try:
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
    except (csv.Error, UnicodeDecodeError):
        missing = list(REQUIRED)
    if missing:
        raise BadInputError(
            f"{path}: not an HR-Bench TSV (no column {', '.join(missing)}); expected the tab-separated hr_bench_4k.tsv "
            "/ hr_bench_8k.tsv with index, question, answer, A-D, category, cycle_category, image"
        )
    return reader


def _options(row: dict[str, str]) -> list[str]:
    options = []
    for letter in OPTION_LETTERS:
        value = (row.get(letter) or "").strip()
        if not value:
            break
        options.append(value)
    return options


def _decode(cell: str) -> bytes:
    try:
        return base64.b64decode(cell, validate=False)
    except (binascii.Error, ValueError):
        raise BadInputError("not base64") from None


def _store_images(out: Path, path: Path, limit: int | None) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Stream the TSV: each row without its image cell (kept as `ref` when it names another row), and the
    dataset image of each row that carried one, or why it cannot be used."""
    rows, images = [], {}
    seen: dict[str, int] = {}  # index -> its row (1-based, after the header)
    with _open(path) as f:
        try:
            for n, row in enumerate(_reader(f, path)):
                if limit is not None and n >= limit:
                    break
                if row["index"] in seen:
                    raise BadInputError(
                        f"{path}: index {row['index']!r} repeats (rows {seen[row['index']]} and {n + 1}); each row "
                        "needs its own index, which names its item"
                    )
                seen[row["index"]] = n + 1
                cell = (row.pop("image") or "").strip()
                if len(cell) > REFERENCE_CHARS:
                    try:
                        images[row["index"]] = save_image_bytes(_decode(cell), out)
                    except BadInputError as e:
                        images[row["index"]] = f"row {row['index']}: image {e}"
                rows.append(row | {"ref": cell})
        except (csv.Error, UnicodeDecodeError) as e:
            raise BadInputError(f"{path}: not a readable TSV ({e.__class__.__name__}: {e})") from None
    return rows, images


def import_hrbench(out: Path, path: Path, *, limit: int | None, workers: int, max_pixels: int) -> Built:
    """One HR-Bench TSV into the test split of the dataset dir being built at `out`."""
    path = Path(path)
    source = source_name(path)
    built = Built(splits={"train": [], "test": []}, params={"annotations": str(path), "limit": limit})
    rows, images = _store_images(out, path, limit)
    stored = sorted({v for v in images.values() if v.startswith("images/")})
    tasks = [(str(out), rel, max_pixels) for rel in stored]
    sizes: dict[str, tuple[int, int] | str] = dict(
        zip(stored, ordered_map(check_image, tasks, workers, "images", name=image_task_name))
    )
    for row in rows:
        item_id = f"{source}-{row['index']}"
        image = images.get(row["index"]) or images.get(row["ref"])
        if image is None:
            why = f"image: no row {row['ref'][:20]!r} holds it"
            built.skipped.append(skip("missing image", why, item=item_id))
            continue
        size = sizes.get(image, image)
        if isinstance(size, str):
            built.skipped.append(skip("bad image", size, item=item_id))
            continue
        question = row["question"].strip()
        group = hashlib.sha256(f"{image}\0{question}".encode()).hexdigest()[:16]
        built.splits["test"].append(ProbeItem(
            id=item_id, image=image, question=question, answer=(row["answer"] or "").strip(),
            options=_options(row),
            difficulty="unknown", width=size[0], height=size[1], source=source,
            kind=(row.get("category") or "").strip(), question_group=f"{source}-{group}",
        ))  # fmt: skip
    cycles = Counter(Counter(it.question_group for it in built.splits["test"]).values())
    built.notes = {"questions": sum(cycles.values()), "cycles_per_question": dict(sorted(cycles.items()))}
    return built
