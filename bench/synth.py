"""Synthesis throughput, memory and orchestration overhead against a zero-latency loopback teacher, 4K scenes.

For each concurrency (8, 64, 256) a child process runs `synth_coldstart` against a loopback server living
in this process and reports turns per second, CPU seconds and peak RSS. The same child then measures, as
the baseline, the unavoidable work of those trajectories serially: decoding each original, executing
every zoom and encoding each image once ("zoom+encode/turn"). Three teachers: `openai` (our loop plus the
SDK and the HTTP upload of every request: exemplar and trajectory images are re-sent inline on every
turn, about 2 MB), `openai-file` (the same with images as file:// URLs) and `scripted` (our loop alone).

Columns: "total" is client CPU over that baseline, minus one; "steady" leaves out the fixed start-up and
finalisation cost (imports, exemplar rendering, curation, stats, plot), measured by a one-attempt run,
which a real run of thousands of attempts amortises. "loop/turn" is the event-loop thread's steady CPU
per turn and "orchestration" its ratio to zoom+encode: everything but the pixel work (prompts, HTTP and
the SDK, parsing, scheduling, judge, store, progress) runs on that thread, the pixel work on worker
threads. Pixel work spread over threads costs more CPU than the same work done serially (the cores
share caches and memory bandwidth), so "vs threads" compares the steady CPU with a second baseline: the
same pixel work through a pool of the run's size (asyncio's default executor), in the order the run
finished its attempts. The run decodes and encodes exactly as often as the baselines do.
Each figure is the median of --repeat runs (2 cores are noisy).
Goals: 256 concurrent trajectories within 2 GB RSS; orchestration <= 25 % of zoom + encode.

    python bench/synth.py [--items 32] [--samples 16] [--concurrency 8 64 256] [--repeat 3]
    python bench/synth.py --smoke        # tiny sizes in a temp dir: proves the bench runs (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from minio3_data.memory import tune_malloc  # noqa: E402

tune_malloc()  # before the heavy imports, as the minio3 CLI does

from loopback_teacher import LoopbackTeacher  # noqa: E402
from peak_rss import own_peak_mb  # noqa: E402
from smoke import parse_args, work_dir  # noqa: E402

from minio3_data.images import OriginalCache  # noqa: E402
from minio3_data.records import Trajectory, read_items, read_trajectories  # noqa: E402
from minio3_data.teacher_options import TeacherOptions  # noqa: E402
from minio3_data.zoom import ZoomEnv  # noqa: E402
from pipelines.build_visualprobe import build_visualprobe  # noqa: E402
from pipelines.synth_coldstart import SynthConfig, synth_coldstart  # noqa: E402

WORK = Path("/tmp/minio3-bench-synth")  # kept between full runs (the dataset is built once)
# the OpenAI teacher with images inline (base64) and as file:// URLs, and the scripted one (our loop alone)
TEACHERS = ("openai", "openai-file", "scripted")
PIXEL_THREADS = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor, which runs the run's pixel work


def child(args: argparse.Namespace) -> None:
    """Run one synthesis, then its baseline, in this process; print the measurements as JSON."""
    concurrency = args.concurrency[0]
    out = args.workdir / f"run-{args.teacher}-c{concurrency}"
    teacher, _, transport = args.teacher.partition("-")  # openai | openai-file | scripted
    client = TeacherOptions(model="bench", base_urls=[args.base_url], api_key_env="NONE", timeout=120)
    cfg = SynthConfig(dataset=args.workdir / "dataset", out=out, teacher=teacher, samples_per_item=args.samples,
                      target=None, concurrency=concurrency, progress=False, error_rate=0.0, limit=args.limit,
                      client=client if teacher == "openai" else TeacherOptions(),
                      image_transport=transport or "inline")
    t0, c0, m0 = time.perf_counter(), time.process_time(), time.thread_time()
    summary = synth_coldstart(cfg)
    wall, cpu, loop = time.perf_counter() - t0, time.process_time() - c0, time.thread_time() - m0
    rss = own_peak_mb()
    turns = sum(t.num_turns for t in read_trajectories(out / "trajectories.parquet"))
    print(json.dumps({"wall": wall, "cpu": cpu, "loop": loop, "turns": turns, "attempts": summary.attempts,
                      "rss_mb": rss, "unavoidable": unavoidable_cpu(out, cfg.dataset),
                      "parallel": unavoidable_cpu(out, cfg.dataset, PIXEL_THREADS)}))


def unavoidable_cpu(run: Path, dataset: Path, threads: int = 1) -> float:
    """CPU seconds for the pixel work synthesis cannot skip: decode each original and encode its first view
    once per item (shared by its samples, as the run does), execute and encode every zoom. With threads > 1
    the work goes through a pool of that size in the order the run finished its attempts, as the run's
    worker threads do it: what the pixel work costs on these cores when run in parallel, with no loop."""
    cache = OriginalCache()
    kept = {t.id: t for t in read_trajectories(run / "trajectories.parquet")}
    finished = [json.loads(line)["id"] for line in (run / "attempts.jsonl").read_text().splitlines()]
    trajs = [kept[i] for i in finished if i in kept]

    def first_view(image: str) -> None:
        ZoomEnv(dataset / image, cache=cache).first_view().jpeg()

    def zooms(t: Trajectory) -> None:
        for obs in ZoomEnv(dataset / t.image, cache=cache).replay(t.turns)[1:]:
            obs.jpeg()

    images = list(dict.fromkeys(t.image for t in trajs))
    c0 = time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(first_view, images))
        list(pool.map(zooms, trajs))
    return time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=32)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 64, 256])
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is printed")
    ap.add_argument("--long-side", default="3840:4096", help="synthetic scene long side range, px")
    ap.add_argument("--workdir", type=Path, help=f"dataset and runs (default {WORK}; with --smoke a temp dir)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    ap.add_argument("--teacher", default="openai", help=argparse.SUPPRESS)
    ap.add_argument("--limit", type=int, default=None, help=argparse.SUPPRESS)
    args = parse_args(ap, items=2, samples=2, concurrency=[2], repeat=1, long_side="1024:1536")
    if args.child:
        return child(args)
    with work_dir(args, WORK) as work:
        args.workdir = work
        bench(args)


def bench(args: argparse.Namespace) -> None:
    """The whole table: the dataset (built once per size), the fixed costs, then every concurrency and teacher."""
    dataset = args.workdir / "dataset"
    if not (dataset / "manifest.json").exists() or len(read_items(dataset / "train.parquet")) != args.items:
        lo, hi = (int(v) for v in args.long_side.split(":"))
        build_visualprobe("synthetic", dataset, train=args.items, test=0, long_side=(lo, hi), overwrite=True)
    answers = {it.question: it.answer for it in read_items(dataset / "train.parquet")}
    print(f"{args.items} items x {args.samples} samples, long side {args.long_side}; "
          "zero-latency loopback OpenAI teacher")
    print(f"{'concurrency':>11} {'teacher':>11} {'turns/s':>8} {'peak RSS':>9} {'client CPU/turn':>16} "
          f"{'zoom+encode/turn':>17} {'total':>6} {'steady':>7} {'loop/turn':>9} {'orchestration':>13} {'vs threads':>9}")
    with LoopbackTeacher(answers=answers, record=False) as srv:

        def measure(teacher: str, c: int, samples: int, limit: int | None = None) -> dict:
            shutil.rmtree(args.workdir / f"run-{teacher}-c{c}", ignore_errors=True)
            cmd = [sys.executable, __file__, "--child", "--concurrency", str(c), "--samples", str(samples),
                   "--teacher", teacher, "--base-url", srv.openai_url, "--workdir", str(args.workdir)]
            res = subprocess.run(cmd + (["--limit", str(limit)] if limit else []), capture_output=True, text=True)
            if res.returncode:
                sys.exit(f"child failed:\n{res.stderr[-3000:]}")
            return json.loads(res.stdout.strip().splitlines()[-1])

        # start-up and finalisation (imports, exemplar rendering, curation, stats, plot) cost the same for
        # one attempt as for a million: a one-attempt run measures them, "steady" leaves them out
        fixed = {}
        for teacher in TEACHERS:
            ms = [measure(teacher, 1, 1, limit=1) for _ in range(args.repeat)]
            fixed[teacher] = (median(m["cpu"] - m["unavoidable"] for m in ms), median(m["loop"] for m in ms))
        for c in args.concurrency:
            for teacher in TEACHERS:
                rows = []
                for _ in range(args.repeat):
                    m = measure(teacher, c, args.samples)
                    n, base = m["turns"], m["unavoidable"]
                    steady = m["cpu"] - fixed[teacher][0]
                    rows.append((n / m["wall"], m["rss_mb"], m["cpu"] / n, base / n, (m["cpu"] - base) / base,
                                 (steady - base) / base, (m["loop"] - fixed[teacher][1]) / n,
                                 (steady - m["parallel"]) / m["parallel"]))
                tps, rss, client, base, over, steady, loop, parallel = (median(col) for col in zip(*rows))
                print(f"{c:>11} {teacher:>11} {tps:>8.1f} {max(r[1] for r in rows):>7.0f}MB "
                      f"{client * 1000:>14.2f}ms {base * 1000:>15.2f}ms {over:>6.0%} {steady:>7.0%} "
                      f"{loop * 1000:>7.2f}ms {loop / base:>13.0%} {parallel:>9.0%}")


if __name__ == "__main__":
    main()
