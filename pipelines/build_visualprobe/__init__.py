"""build-visualprobe: VisualProbe-style datasets with target boxes, from scratch or from boxes.

One call, `build_visualprobe(...)`, builds a dataset dir (train.parquet, test.parquet, images/,
manifest.json; see DESIGN.md) from one source:
  synthetic - procedural high-resolution scenes with small targets and look-alike distractors;
  coco      - template questions over COCO-format detection boxes;
  official  - the released Mini-o3 JSON layout (no boxes): VisualProbe train and its Easy/Medium/Hard tests;
  vstar, hrbench, mmerw - the benchmarks the paper reports (V* Bench, HR-Bench 4K/8K, MME-RealWorld), into
              the test split, for `minio3 eval`;
  o3bench, vtcbench - harder ones the field reports now (O3-Bench, VTC-Bench), likewise (docs/eval.md,
              "Benchmarks", says which others are not public and why).
Whatever a source leaves out (an unusable image, a row that breaks the row rules) is listed in excluded.jsonl.
The dir is built in a temporary sibling and renamed at the end, so a killed build leaves nothing at
--out; --out is locked for the build and may never be, contain or sit inside an input (minio3_data.outputs).
`emit_mini_o3_json=True` also writes the released layout next to the parquet files.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError
from minio3_data.exclusions import EXCLUDED_NAME, Exclusion, exclusion_line, write_exclusions
from minio3_data.fsutil import atomic_dir

from ..parallel import default_workers
from .coco import build_coco
from .hrbench import import_hrbench
from .image_files import DEFAULT_MAX_PIXELS
from .mmerw import import_mmerw
from .o3bench import import_o3bench
from .official import emit_mini_o3_json, import_official
from .result import Built, drop_bad_rows
from .synthetic_source import build_synthetic
from .vstar import import_vstar
from .vtcbench import import_vtcbench
from .writer import write_dataset

# benchmarks given as an annotation file (--annotations) and the folder its image paths start in (--images)
WITH_IMAGE_FOLDER: dict[str, tuple[Callable[..., Built], str]] = {
    "mmerw": (import_mmerw, "FILE.json"),
    "o3bench": (import_o3bench, "metadata.jsonl"),
    "vtcbench": (import_vtcbench, "VTC-Bench.tsv"),
}
SOURCES: tuple[str, ...] = ("synthetic", "coco", "official", "vstar", "hrbench", *WITH_IMAGE_FOLDER)
DEFAULT_TRAIN = 4000
DEFAULT_TEST = 500
DEFAULT_LONG_SIDE = (2048, 8192)


@dataclass
class BuildSummary:
    out: Path
    source: str
    counts: dict[str, int]  # items per split
    by_difficulty: dict[str, dict[str, int]]  # split -> difficulty -> items
    skipped: list[Exclusion] = field(default_factory=list)  # as listed in excluded.jsonl
    mini_o3_json: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def exclusion_line(self) -> str | None:
        return exclusion_line(self.skipped, self.out / EXCLUDED_NAME)


def _need(value: Any, option: str, source: str) -> Any:
    if value is None:
        raise BadInputError(f"--source {source} needs {option}")
    return value


def _build(
    root: Path,
    source: str,
    *,
    train: int | None,
    test: int | None,
    seed: int,
    workers: int,
    long_side: tuple[int, int],
    images: Path | None,
    annotations: Path | None,
    from_dir: Path | None,
    max_pixels: int,
) -> Built:
    if source == "synthetic":
        return build_synthetic(
            root,
            train=DEFAULT_TRAIN if train is None else train,
            test=DEFAULT_TEST if test is None else test,
            seed=seed,
            workers=workers,
            long_side=long_side,
        )
    if source == "coco":
        return build_coco(
            root,
            images=_need(images, "--images DIR", source),
            annotations=_need(annotations, "--annotations FILE", source),
            train=DEFAULT_TRAIN if train is None else train,
            test=DEFAULT_TEST if test is None else test,
            seed=seed,
            workers=workers,
            max_pixels=max_pixels,
        )
    if source == "vstar":
        return import_vstar(root, _need(from_dir, "--from DIR", source), seed=seed, limit=test, workers=workers,
                            max_pixels=max_pixels)
    if source == "hrbench":
        return import_hrbench(root, _need(annotations, "--annotations FILE.tsv", source), limit=test,
                              workers=workers, max_pixels=max_pixels)
    if source in WITH_IMAGE_FOLDER:
        importer, file = WITH_IMAGE_FOLDER[source]
        return importer(root, _need(annotations, f"--annotations {file}", source), _need(images, "--images DIR", source),
                        limit=test, workers=workers, max_pixels=max_pixels)
    return import_official(
        root,
        _need(from_dir, "--from DIR", source),
        workers=workers,
        limits={"train": train, "test": test},
        max_pixels=max_pixels,
    )


def build_visualprobe(
    source: str,
    out: str | Path,
    *,
    train: int | None = None,
    test: int | None = None,
    seed: int = 0,
    workers: int | None = None,
    long_side: tuple[int, int] = DEFAULT_LONG_SIDE,
    images: str | Path | None = None,
    annotations: str | Path | None = None,
    from_dir: str | Path | None = None,
    emit_mini_o3: bool = False,
    overwrite: bool = False,
    max_pixels: int | None = None,
) -> BuildSummary:
    """Build a dataset dir at `out` from `source`; train/test default to 4000/500 (official and the benchmarks:
    all; a benchmark fills the test split only, and `test` takes its first rows).

    coco/official images above `max_pixels` (default 100 MP) are skipped and listed, never decoded."""
    if source not in SOURCES:
        raise BadInputError(f"--source {source!r}: use one of {', '.join(SOURCES)}")
    for name, n in (("--train", train), ("--test", test)):
        if n is not None and n < 0:
            raise BadInputError(f"{name} {n}: must be zero or more")
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if max_pixels < 1:
        raise BadInputError(f"--max-pixels {max_pixels}: must be a positive number of pixels")
    started = time.monotonic()
    out = Path(out)
    inputs = [("--images", images), ("--annotations", annotations), ("--from", from_dir)]
    with atomic_dir(out, overwrite=overwrite, inputs=inputs) as root:
        built = _build(
            root,
            source,
            train=train,
            test=test,
            seed=seed,
            workers=workers or default_workers(),
            long_side=long_side,
            images=Path(images) if images else None,
            annotations=Path(annotations) if annotations else None,
            from_dir=Path(from_dir) if from_dir else None,
            max_pixels=max_pixels,
        )
        drop_bad_rows(built)
        if not any(built.splits.values()):
            reasons = "; ".join(f"{s.id}: {s.detail}" for s in built.skipped[:3]) or "no image had a usable question"
            raise BadInputError(f"--source {source}: no usable items ({reasons})")
        emitted = emit_mini_o3_json(root, built.splits) if emit_mini_o3 else []
        manifest = write_dataset(root, built, source, emitted)
        write_exclusions(root, built.skipped)
    return BuildSummary(
        out=out,
        source=source,
        counts={split: c["total"] for split, c in manifest["counts"].items()},
        by_difficulty={split: c["by_difficulty"] for split, c in manifest["counts"].items()},
        skipped=built.skipped,
        mini_o3_json=emitted,
        seconds=time.monotonic() - started,
    )


__all__ = ["SOURCES", "BuildSummary", "build_visualprobe"]
