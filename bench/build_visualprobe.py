"""Synthetic VisualProbe items per second: workers=1 vs workers=N, and per-item cost vs a plain JPEG encode.

Both builds write the same items (same seed), so the speed-up is like for like, and the script checks
that their bytes are identical. The baseline re-encodes the very same images with PIL (what writing
the dataset costs at minimum), so "x an encode" says how much the scene drawing, layout and checking
add on top.

    .venv/bin/python bench/build_visualprobe.py                          # 16 items, 2048:8192, all cores
    .venv/bin/python bench/build_visualprobe.py --items 40 --long-side 2048:3072 --workers 2
    .venv/bin/python bench/build_visualprobe.py --smoke                  # tiny sizes: proves the bench runs
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from minio3_data.images import encode_jpeg, open_image
from pipelines.build_visualprobe import build_visualprobe
from pipelines.build_visualprobe.synthetic_source import JPEG_QUALITY
from smoke import parse_args


def _timed_build(out: Path, items: int, workers: int, long_side: tuple[int, int]) -> float:
    start = time.perf_counter()
    build_visualprobe("synthetic", out, train=items, test=0, seed=0, workers=workers, long_side=long_side)
    return time.perf_counter() - start


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def _encode_seconds(root: Path) -> float:
    """Time PIL JPEG encodes of the same images at the same quality (decode excluded)."""
    images = [open_image(p) for p in sorted((root / "images").rglob("*.jpg"))]
    start = time.perf_counter()
    for im in images:
        encode_jpeg(im, quality=JPEG_QUALITY)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--long-side", default="2048:8192")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parse_args(ap, items=2, long_side="512:768", workers=2)
    lo, hi = (int(v) for v in args.long_side.split(":"))
    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp) / "one", Path(tmp) / "many"
        t1 = _timed_build(one, args.items, 1, (lo, hi))
        tn = _timed_build(many, args.items, args.workers, (lo, hi))
        same = _digest(one) == _digest(many)
        enc = _encode_seconds(one)
    n = args.items
    print(f"synthetic build, {n} items, long side {lo}:{hi}, {os.cpu_count()} CPU(s)")
    print(f"  workers=1:  {n / t1:6.2f} items/s  ({t1 / n:.3f} s/item)")
    print(
        f"  workers={args.workers}:  {n / tn:6.2f} items/s  -> {t1 / tn:.2f}x workers=1  "
        f"(identical bytes: {same})"
    )
    print(
        f"  plain PIL JPEG encode of the same images: {enc / n:.3f} s/item "
        f"-> one item costs {t1 / enc:.1f}x an encode"
    )


if __name__ == "__main__":
    main()
