"""Seconds and memory to build a `minio3 view` site for a run, against exporting the same run.

Setup (not timed, kept in --workdir for reruns): a synthetic dataset and a scripted synth-coldstart run with
--samples-per-item attempts per question (every attempt gets a page, kept or not).
Timed, each in a fresh process: the site with 1 worker and with --workers, and, as the baseline measured
on the same machine the same day, `export-llamafactory` of the same run with --workers, which does the same
pixel work per trajectory (decode each original, re-derive every crop through ZoomEnv, encode it).
Peak RSS is reported per step; run it at two sizes to see that it does not grow with the run.

    .venv/bin/python bench/view.py                                     # 300 questions x 20 = 6,000 attempts
    .venv/bin/python bench/view.py --items 50 --samples-per-item 4 --workdir /tmp/bench-view
    .venv/bin/python bench/view.py --smoke                             # tiny sizes: proves the bench runs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(REPO)]

from peak_rss import peak_mb
from smoke import parse_args


def setup(work: Path, items: int, samples: int, long_side: tuple[int, int], workers: int) -> None:
    from minio3_data.teacher_options import TeacherOptions
    from pipelines.build_visualprobe import build_visualprobe
    from pipelines.synth_coldstart import SynthConfig, synth_coldstart

    build_visualprobe(
        "synthetic", work / "dataset", train=items, test=1, seed=1, long_side=long_side, workers=workers
    )
    synth_coldstart(SynthConfig(
        dataset=work / "dataset", out=work / "run", teacher="scripted", target=None, samples_per_item=samples,
        concurrency=64, progress=False, seed=1, client=TeacherOptions(),
    ))  # fmt: skip


def _size_mb(root: Path) -> float:
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / 2**20


def run_step(step: str, work: Path, workers: int) -> dict[str, Any]:
    from pipelines.export_llamafactory import export_run
    from pipelines.view import build_site

    out = work / f"out-{step}"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    if step == "export":
        done = export_run(work / "run", out, workers=workers, progress=False).rows_written
    else:
        done = build_site(work / "run", out, workers=1 if step == "view-1" else workers, progress=False).pages
    seconds = time.perf_counter() - started
    return {"step": step, "seconds": seconds, "done": done, "peak_rss_mb": peak_mb(), "out_mb": _size_mb(out)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=300)
    p.add_argument("--samples-per-item", type=int, default=20)
    p.add_argument("--long-side", default="2048:4096", help="synthetic scene long side range, px")
    p.add_argument("--workers", type=int, default=min(8, len(os.sched_getaffinity(0))))
    p.add_argument("--workdir", type=Path, help="keep inputs here (default: a temp dir, removed)")
    p.add_argument("--step", help=argparse.SUPPRESS)  # internal: one child step
    a = parse_args(p, items=3, samples_per_item=2, long_side="512:1024", workers=2)
    if a.step == "setup":
        lo, hi = (int(v) for v in a.long_side.split(":"))
        setup(a.workdir, a.items, a.samples_per_item, (lo, hi), a.workers)
        return
    if a.step:
        print(json.dumps(run_step(a.step, a.workdir, a.workers)))
        return
    work = a.workdir or Path(tempfile.mkdtemp(prefix="minio3-bench-view-"))
    step = [sys.executable, __file__, "--workdir", str(work), "--workers", str(a.workers)]
    try:
        if not (work / "run/attempts.jsonl").exists():
            t = time.perf_counter()
            sizes = [
                "--items",
                str(a.items),
                "--samples-per-item",
                str(a.samples_per_item),
                "--long-side",
                a.long_side,
            ]
            subprocess.run([*step, "--step", "setup", *sizes], check=True, capture_output=True)
            print(
                f"setup: {a.items} questions x {a.samples_per_item} scripted attempts "
                f"({time.perf_counter() - t:.0f}s, not timed)"
            )
        results = []
        for name in ("export", "view-1", "view"):
            done = subprocess.run([*step, "--step", name], capture_output=True, text=True, check=True)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
        base = results[0]["seconds"]
        print(
            f"{'step':<8} {'done':>6} {'seconds':>8} {'per s':>7} {'vs export':>9} "
            f"{'peak RSS MB':>12} {'out MB':>8}"
        )
        for r in results:
            label = r["step"] if r["step"] != "view" else f"view-{a.workers}"
            print(f"{label:<8} {r['done']:>6} {r['seconds']:>8.1f} {r['done'] / r['seconds']:>7.1f} "
                  f"{r['seconds'] / base:>8.2f}x {r['peak_rss_mb']:>12.0f} {r['out_mb']:>8.0f}")  # fmt: skip
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
