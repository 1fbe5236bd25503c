"""Trajectories per second exporting to LLaMA-Factory: minio3 vs what the released preprocess script does.

Setup (not timed): photo-like originals, trajectories recorded through ZoomEnv (0-4 zooms, some nested;
the samples of one item adjacent, as synth-coldstart writes them), our run dir, and the same
trajectories in the released Mini-o3-Coldstart parquet layout.
Timed, each in a fresh process with the same worker count:
  - baseline: the released `preprocess_coldstart.py` approach: `datasets.load_dataset` + `datasets.map`
    that decodes and re-saves every image into a folder per row, then one indented JSON;
  - minio3 --official: the same parquet (original bytes kept, stored once per content hash);
  - minio3 --run: our run dir (crops re-derived from the originals by replaying the zooms).

    .venv/bin/python bench/export.py                         # 2,000 trajectories on 1,000 originals
    .venv/bin/python bench/export.py --trajectories 500 --workers 4
    .venv/bin/python bench/export.py --smoke                 # tiny sizes: proves the bench runs
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from export_fixtures import record, released_row, write_released  # noqa: E402
from peak_rss import peak_mb  # noqa: E402 (bench/peak_rss.py)
from smoke import parse_args  # noqa: E402 (bench/smoke.py)
from zoom import photo_like  # noqa: E402 (bench/zoom.py)

from minio3_data.records import Trajectory, write_trajectories  # noqa: E402

METHODS = ("baseline", "official", "run")


def _original(args: tuple[Path, int, int, int]) -> None:
    path, seed, width, height = args
    photo_like(width, height, seed).save(path, quality=90)


def _trajectory(args: tuple[Path, int, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """One recorded trajectory on original `k`, and its released-layout row."""
    dataset, k, n = args
    rng = random.Random(n)
    zooms: list[tuple[tuple[float, float, float, float], str]] = []
    for z in range(rng.randint(0, 4)):
        w, h = rng.uniform(0.2, 0.6), rng.uniform(0.2, 0.6)
        x, y = rng.uniform(0, 1 - w), rng.uniform(0, 1 - h)
        source = f"observation_{z}" if z and rng.random() < 0.3 else "original_image"
        zooms.append(((round(x, 3), round(y, 3), round(x + w, 3), round(y + h, 3)), source))
    traj = record(dataset, f"images/{k:05d}.jpg", zooms, tid=f"item{k}#{n}")
    return traj.to_dict(), released_row(dataset, traj, rollout=n)


def setup(work: Path, trajectories: int, originals: int, size: tuple[int, int], workers: int) -> None:
    dataset = work / "dataset"
    (dataset / "images").mkdir(parents=True)
    jobs = [(dataset, n * originals // trajectories, n) for n in range(trajectories)]  # samples adjacent
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_original, [(dataset / f"images/{k:05d}.jpg", k, *size) for k in range(originals)]))
        made = list(pool.map(_trajectory, jobs, chunksize=16))
    (work / "run").mkdir()
    write_trajectories(work / "run/trajectories.parquet", [Trajectory.from_dict(t) for t, _ in made])
    (work / "run/run.json").write_text(json.dumps({"dataset": str(dataset)}))
    write_released(work / "released.parquet", [row for _, row in made])


def released_baseline(parquet: Path, out: Path, workers: int) -> int:
    """What preprocess_coldstart.py does (literal_eval in place of its eval): every image decoded and re-saved."""
    import datasets

    ds = datasets.load_dataset(
        "parquet", data_files=str(parquet), split="train", cache_dir=str(out / ".cache")
    )
    ds = ds.add_column("idx", list(range(len(ds))))

    def save(row: dict[str, Any]) -> dict[str, Any]:
        folder = out / "images" / f"minio3_coldstart_{row['idx']}"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for image, name in zip(row["images"], row["image_names"]):
            image.save(folder / name)
            paths.append(str(folder / name))
        return {"images": paths}

    ds = ds.map(save, num_proc=workers if workers > 1 else None)
    records = []
    for r in ds.to_pandas().to_dict("records"):
        records.append({"conversations": list(ast.literal_eval(r["conversations"])),
                        "images": [im["path"] for im in r["images"]]})  # fmt: skip
    (out / "Mini-o3-Coldstart.json").write_text(json.dumps(records, indent=4))
    return len(records)


def run_method(method: str, work: Path, workers: int) -> dict[str, Any]:
    """Run one method in this (fresh) process; returns its time, rows and peak memory."""
    from pipelines.export_llamafactory import export_official, export_run

    out = work / f"out-{method}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    if method == "baseline":
        out.mkdir()
        rows = released_baseline(work / "released.parquet", out, workers)
    elif method == "official":
        rows = export_official(work / "released.parquet", out, workers=workers, progress=False).rows_written
    else:
        rows = export_run(work / "run", out, workers=workers, progress=False).rows_written
    seconds = time.perf_counter() - started
    return {"method": method, "seconds": seconds, "rows": rows, "peak_rss_mb": peak_mb()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trajectories", type=int, default=2000)
    p.add_argument("--originals", type=int, default=1000)
    p.add_argument("--size", default="2400x1600", help="original size WxH (above the 2 MP first-view cap)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--workdir", type=Path, help="keep inputs here (default: a temp dir, removed)")
    p.add_argument("--step", choices=("setup", *METHODS), help=argparse.SUPPRESS)  # internal: one child step
    a = parse_args(p, trajectories=8, originals=4, size="640x480")
    if a.step == "setup":
        w, h = (int(v) for v in a.size.split("x"))
        setup(a.workdir, a.trajectories, a.originals, (w, h), a.workers)
        return
    if a.step:
        print(json.dumps(run_method(a.step, a.workdir, a.workers)))
        return
    work = a.workdir or Path(tempfile.mkdtemp(prefix="minio3-bench-export-"))
    # Every step runs in its own process: peak RSS is per step (Linux keeps a parent's peak across exec).
    step = [sys.executable, __file__, "--workdir", str(work), "--workers", str(a.workers)]
    try:
        if not (work / "released.parquet").exists():
            t = time.perf_counter()
            sizes = ["--trajectories", str(a.trajectories), "--originals", str(a.originals), "--size", a.size]
            subprocess.run([*step, "--step", "setup", *sizes], check=True)
            print(f"setup: {a.trajectories} trajectories on {a.originals} {a.size} originals "
                  f"({time.perf_counter() - t:.0f}s, not timed)")  # fmt: skip
        results = []
        for method in METHODS:
            done = subprocess.run([*step, "--step", method], capture_output=True, text=True, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        base = results[0]["seconds"]
        print(f"{'method':<10} {'rows':>6} {'seconds':>8} {'traj/s':>8} {'speedup':>8} {'peak RSS MB':>12}")
        for r in results:
            print(f"{r['method']:<10} {r['rows']:>6} {r['seconds']:>8.1f} {r['rows'] / r['seconds']:>8.1f} "
                  f"{base / r['seconds']:>7.1f}x {r['peak_rss_mb']:>12.0f}")  # fmt: skip
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
