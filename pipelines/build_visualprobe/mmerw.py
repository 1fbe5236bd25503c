"""MME-RealWorld (yfzhang114/MME-RealWorld, and its Lite subset): one JSON list, images in a folder.

    [{"Question_id": "perception/diagram_and_table/diagram/0558", "Image": "diagram_and_table/cons9.jpg",
      "Text": "...", "Answer choices": ["(A) 458", ..., "(E) This image doesn't feature the data."],
      "Ground truth": "B", "Task": "Perception", "Subtask": "Diagram and Table", "Category": "diagram"}, ...]

Options lose their "(A) " prefixes (our question text letters them again); the task path becomes `kind`.
A record of the wrong shape stops the import naming it (the file is not MME-RealWorld); a record whose
options are not lettered "(A)", "(B)", ... in order is skipped and listed in excluded.jsonl.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError
from minio3_data.protocol import OPTION_LETTERS
from minio3_data.records import ProbeItem

from .fields import get, json_records
from .image_files import import_images
from .result import Built, skip

SOURCE = "mmerw"
_OPTION_RE = re.compile(r"\(([A-Z])\)\s*(.*)", re.DOTALL)
_ID_CHARS_RE = re.compile(r"[^A-Za-z0-9_.-]+")


def split_choice(choices: list[str]) -> list[str] | str:
    """["(A) x", "(B) y"] -> ["x", "y"], or why the choices are not lettered in order."""
    options = []
    for i, choice in enumerate(choices):
        m = _OPTION_RE.fullmatch(choice.strip())
        if m is None or m.group(1) != OPTION_LETTERS[i] or not m.group(2).strip():
            return f"Answer choices[{i}] {choice[:40]!r}: expected '({OPTION_LETTERS[i]}) <option>'"
        options.append(m.group(2).strip())
    return options


def _read(path: Path) -> list[dict[str, Any]]:
    out = []
    for where, r in json_records(path, "MME-RealWorld questions"):
        choices = get(path, where, r, "Answer choices", (list,))
        if not all(isinstance(c, str) for c in choices):
            raise BadInputError(f"{path}: {where}.Answer choices: expected a list of strings")
        out.append({
            "qid": str(get(path, where, r, "Question_id", (str, int))),
            "image": get(path, where, r, "Image", (str,)),
            "question": get(path, where, r, "Text", (str,)),
            "choices": choices,
            "answer": get(path, where, r, "Ground truth", (str,)).strip().strip("()"),
            "kind": "/".join(str(r[k]) for k in ("Task", "Subtask", "Category") if isinstance(r.get(k), str)),
        })  # fmt: skip
    return out


def import_mmerw(
    out: Path, annotations: Path, images_root: Path, *, limit: int | None, workers: int, max_pixels: int
) -> Built:
    """MME-RealWorld's JSON (images under `images_root`) into the test split of the dataset dir at `out`."""
    if not Path(images_root).is_dir():
        raise BadInputError(
            f"--images {images_root}: not a directory (the folder the records' Image paths are in)"
        )
    records = _read(Path(annotations))[:limit]
    params = {"annotations": str(annotations), "images": str(images_root), "limit": limit}
    built = Built(splits={"train": [], "test": []}, params=params)
    images = import_images(
        Path(images_root), [r["image"] for r in records], out, workers=workers, max_pixels=max_pixels
    )
    seen: set[str] = set()
    for r in records:
        item_id = f"{SOURCE}-{_ID_CHARS_RE.sub('-', r['qid']).strip('-')}"
        if item_id in seen:
            raise BadInputError(f"{annotations}: Question_id {r['qid']!r} repeats; ids must be unique")
        seen.add(item_id)
        image, options = images[r["image"]], split_choice(r["choices"])
        if isinstance(image, str) or isinstance(options, str):
            why = ("bad image", image) if isinstance(image, str) else ("bad options", options)
            built.skipped.append(skip(*why, image=r["image"], item=item_id))
            continue
        copy, size = image
        built.splits["test"].append(ProbeItem(
            id=item_id, image=copy, question=r["question"].strip(), answer=r["answer"], options=options,
            difficulty="unknown", width=size[0], height=size[1], source=SOURCE, kind=r["kind"],
        ))  # fmt: skip
    return built
