"""The released Mini-o3 layout, both ways.

Released layout (BASE_IMAGE_DIR holds everything; image paths are relative to it):
  VisualProbe_train/train.json (or train.json), VisualProbe_{Easy,Medium,Hard}/val.json,
each a JSON list of {"images": [path], "problem": "<image>\\n...", "solution": ..., "data_source": ...,
"doc_id": ...}. Import strips `<image>` from the question (our canonical form never holds it) and
takes difficulty from `data_source`; emit writes our dataset in that layout with `<image>` exactly once,
so the released verl fork and checkpoints can train and evaluate on it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError
from minio3_data.fsutil import atomic_write_text
from minio3_data.protocol import IMAGE_PLACEHOLDER, OPTION_LETTERS, question_text
from minio3_data.records import DIFFICULTIES, ProbeItem

from .fields import get, json_records
from .image_files import import_images
from .result import Built, skip

TRAIN_FILES = ("VisualProbe_train/train.json", "train.json")
VAL_DIRS = {"easy": "VisualProbe_Easy", "medium": "VisualProbe_Medium", "hard": "VisualProbe_Hard"}
DIFFICULTY_BY_SOURCE = {
    "visual_probe_easy": "easy",
    "visual_probe_medium": "medium",
    "visual_probe_hard": "hard",
    "visual_probe_train": "unknown",  # the released train split has no difficulty
}
OPTIONS_HEADER = "Options:"
OPTIONS_FOOTER = "Answer with the option's letter."


def split_options(text: str) -> tuple[str, list[str]]:
    """Invert `protocol.question_text`: the question and its options (empty when open-ended)."""
    lines = text.split("\n")
    if OPTIONS_HEADER not in lines or lines[-1] != OPTIONS_FOOTER:
        return text, []
    start = len(lines) - 1 - lines[::-1].index(OPTIONS_HEADER)
    body = lines[start + 1 : -1]
    if not body or any(not line.startswith(f"{OPTION_LETTERS[i]}. ") for i, line in enumerate(body)):
        return text, []
    return "\n".join(lines[:start]), [line[3:] for line in body]


def canonical_question(problem: str) -> tuple[str, list[str]]:
    """A released `problem` without its `<image>` placeholder, split into question and options."""
    return split_options(problem.replace(IMAGE_PLACEHOLDER, "").strip())


def read_released(path: Path) -> list[dict[str, Any]]:
    """Parse and validate one released JSON file; a malformed one is a one-line error naming the field."""
    out = []
    for i, (where, row) in enumerate(json_records(path)):
        images = get(path, where, row, "images", (list,))
        if len(images) != 1 or not isinstance(images[0], str):
            raise BadInputError(f"{path}: {where}.images: expected a list with exactly one image path")
        source = get(path, where, row, "data_source", (str,))
        if source not in DIFFICULTY_BY_SOURCE:
            raise BadInputError(
                f"{path}: {where}.data_source: {source!r} is not one of {', '.join(DIFFICULTY_BY_SOURCE)}"
            )
        doc_id = get(path, where, row, "doc_id", (str, int), default=i)
        out.append(
            {
                "image": images[0],
                "problem": get(path, where, row, "problem", (str,)),
                "solution": str(get(path, where, row, "solution", (str, int, float))),
                "difficulty": DIFFICULTY_BY_SOURCE[source],
                "doc_id": str(doc_id),
            }
        )
    return out


def _released_files(root: Path) -> list[tuple[str, str, Path]]:
    """(split, tag, path) for each released file present under root."""
    found = []
    train = next((root / f for f in TRAIN_FILES if (root / f).is_file()), None)
    if train:
        found.append(("train", "train", train))
    for tag, folder in VAL_DIRS.items():
        if (root / folder / "val.json").is_file():
            found.append(("test", tag, root / folder / "val.json"))
    if not found:
        raise BadInputError(
            f"{root}: no released files found; expected {' or '.join(TRAIN_FILES)} and/or "
            f"{{{','.join(VAL_DIRS.values())}}}/val.json"
        )
    return found


def import_official(
    out: Path, root: Path, *, workers: int, limits: dict[str, int | None], max_pixels: int
) -> Built:
    """Import the released layout under `root` into the dataset dir being built at `out`."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(f"{root}: --from must be a directory in the released Mini-o3 layout")
    rows: dict[str, list[tuple[str, dict[str, Any]]]] = {"train": [], "test": []}
    for split, tag, path in _released_files(root):
        seen: set[str] = set()
        for row in read_released(path):
            if row["doc_id"] in seen:
                raise BadInputError(
                    f"{path}: doc_id {row['doc_id']!r} repeats; doc_id must be unique per file"
                )
            seen.add(row["doc_id"])
            rows[split].append((f"official-{tag}-{row['doc_id']}", row))
    for split, cap in limits.items():
        if cap is not None:
            rows[split] = rows[split][:cap]
    rels = [row["image"] for split_rows in rows.values() for _, row in split_rows]
    images = import_images(root, rels, out, workers=workers, max_pixels=max_pixels)
    params = {"from": str(root), "limits": limits, "max_pixels": max_pixels}
    built = Built(splits={"train": [], "test": []}, params=params)
    for split, split_rows in rows.items():
        for item_id, row in split_rows:
            image = images[row["image"]]
            if isinstance(image, str):
                built.skipped.append(skip("bad image", image, image=row["image"], item=item_id, split=split))
                continue
            rel, size = image
            question, options = canonical_question(row["problem"])
            built.splits[split].append(
                ProbeItem(
                    id=item_id,
                    image=rel,
                    question=question,
                    answer=row["solution"],
                    options=options,
                    difficulty=row["difficulty"],
                    target_bbox=None,
                    width=size[0],
                    height=size[1],
                    source="official",
                    kind="",
                )
            )
    return built


def released_record(item: ProbeItem, data_source: str) -> dict[str, Any]:
    """One item in the released JSON layout; the problem carries `<image>` exactly once."""
    text = question_text(item.question, item.options)
    if IMAGE_PLACEHOLDER in text:
        raise BadInputError(
            f"item {item.id}: its question holds {IMAGE_PLACEHOLDER!r}; canonical questions must not"
        )
    return {
        "images": [item.image],
        "problem": f"{IMAGE_PLACEHOLDER}\n{text}",
        "solution": item.answer,
        "data_source": data_source,
        "doc_id": item.id,
    }


def emit_mini_o3_json(root: Path, splits: dict[str, list[ProbeItem]]) -> list[str]:
    """Write the released layout into dataset dir `root` (use it as BASE_IMAGE_DIR); returns the files.

    Test items without an easy/medium/hard difficulty have no released val file and are left out.
    """
    files = {
        "VisualProbe_train/train.json": [released_record(it, "visual_probe_train") for it in splits["train"]]
    }
    for d in DIFFICULTIES:
        test = [it for it in splits["test"] if it.difficulty == d]
        files[f"{VAL_DIRS[d]}/val.json"] = [released_record(it, f"visual_probe_{d}") for it in test]
    for rel, records in files.items():
        atomic_write_text(root / rel, json.dumps(records, indent=2, ensure_ascii=False) + "\n")
    return sorted(files)
