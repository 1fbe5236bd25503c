"""Milliseconds per zoom: ZoomEnv (shared decoded-original cache) vs a naive open-crop-resize-encode.

A 6-zoom trajectory (depth-first, a return to the original, a nested crop) on an 8K JPEG. The naive
baseline opens and decodes the file for every zoom, as a tool without a cache would; ZoomEnv decodes
the original once. "cold" counts that one decode inside the trajectory; "warm" is every later
trajectory on the same image (synthesis samples an item several times; RL rolls out n per prompt).
Both sides produce the same display image and the same JPEG bytes.

    .venv/bin/python bench/zoom.py                      # 7680x4320 generated photo-like scene
    .venv/bin/python bench/zoom.py --image my_8k.jpg    # your own image
    .venv/bin/python bench/zoom.py --protocol minio3    # our display rule (resampled over the box)
    .venv/bin/python bench/zoom.py --smoke              # tiny sizes: proves the bench runs
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from minio3_data.images import OriginalCache, encode_jpeg
from minio3_data.protocol import Zoom
from minio3_data.profiles import PROFILES, ProtocolProfile, get_profile
from minio3_data.zoom import Observation, ZoomEnv, crop_box
from smoke import parse_args

TRAJECTORY = [
    Zoom((0.05, 0.10, 0.55, 0.60)),  # a large region first
    Zoom((0.20, 0.20, 0.70, 0.70), "observation_1"),  # deeper inside it
    Zoom((0.30, 0.35, 0.60, 0.65), "observation_2"),  # deeper still
    Zoom((0.55, 0.40, 0.95, 0.90)),  # wrong place: back to the original, elsewhere
    Zoom((0.10, 0.50, 0.40, 0.95), "observation_4"),
    Zoom((0.62, 0.05, 0.74, 0.17)),  # a small, direct zoom to verify
]


def photo_like(width: int, height: int, seed: int = 0) -> Image.Image:
    """Smooth colour fields plus sensor-like noise, so the JPEG is about as heavy as a real photo."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(height // 64 + 1, width // 64 + 1, 3), dtype=np.uint8)
    base = np.asarray(
        Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16
    )
    noise = rng.normal(0, 12, size=(height, width, 1)).astype(np.int16)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def naive_trajectory(path: Path, protocol: ProtocolProfile) -> list[bytes]:
    """Open, decode, crop, resize and encode from the file for every zoom (same geometry, no cache), with
    the profile's display rule (the released tool's crop-then-resize, or a resize over the box)."""
    out = []
    boxes: list[tuple[int, int, int, int]] = []
    for zoom in TRAJECTORY:
        with Image.open(path) as im:
            im = im.convert("RGB")
            source = boxes[zoom.source_index - 1] if zoom.source_index else (0, 0, *im.size)
            box = crop_box(source, zoom.bbox, protocol)
            assert isinstance(box, tuple), box
            boxes.append(box)
            out.append(encode_jpeg(protocol.display.show_crop(im, box)))
    return out


def env_trajectory(path: Path, cache: OriginalCache, protocol: ProtocolProfile) -> list[bytes]:
    env = ZoomEnv(path, cache=cache, protocol=protocol)
    out = []
    for zoom in TRAJECTORY:
        obs = env.step(zoom)
        assert isinstance(obs, Observation), obs
        out.append(obs.jpeg())
    return out


def timed(fn, repeats: int) -> tuple[float, list[bytes]]:
    """Median wall time of `repeats` runs and the last run's output."""
    times, out = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--image", type=Path, help="a JPEG to zoom into (default: a generated scene of --size)"
    )
    parser.add_argument("--size", default="7680x4320", help="the generated scene, WxH")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--protocol", choices=tuple(PROFILES), default=tuple(PROFILES)[0])
    args = parse_args(parser, size="960x540", repeats=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.image or Path(tmp) / "scene.jpg"
        if args.image is None:
            w, h = (int(v) for v in args.size.split("x"))
            photo_like(w, h).save(path, quality=90)
        with Image.open(path) as im:
            print(f"image: {path.name} {im.size[0]}x{im.size[1]}, {path.stat().st_size / 1e6:.1f} MB")
        n = len(TRAJECTORY)
        p = get_profile(args.protocol)
        naive_s, naive_out = timed(lambda: naive_trajectory(path, p), args.repeats)
        cold_s, cold_out = timed(lambda: env_trajectory(path, OriginalCache(), p), args.repeats)
        warm = OriginalCache()
        env_trajectory(path, warm, p)
        warm_s, warm_out = timed(lambda: env_trajectory(path, warm, p), args.repeats)
        assert naive_out == cold_out == warm_out, "ZoomEnv and the naive baseline disagree"
        print(f"protocol {p.name}\n{'':28}{'ms / zoom':>10}{'speed-up':>10}")
        print(f"{'naive (decode every zoom)':28}{naive_s / n * 1e3:10.1f}{1:10.1f}x")
        print(f"{'ZoomEnv cold (1 decode)':28}{cold_s / n * 1e3:10.1f}{naive_s / cold_s:10.1f}x")
        print(f"{'ZoomEnv warm (cached)':28}{warm_s / n * 1e3:10.1f}{naive_s / warm_s:10.1f}x")


if __name__ == "__main__":
    main()
