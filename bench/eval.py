"""Turn scaling in one pass: `minio3 eval` at budgets 4,8,12,16,24,32 sampled once at 32 turns, against the
baseline of one pass per budget (six evaluations), in the same process.

Two policies, both deterministic, so the two ways must print the same table (intervals included):
  - a zero-latency loopback server speaking the OpenAI API (images inline), playing a script: each
    trajectory zooms a geometric number of times (mean 4) and then answers (right 60% of the time), and one
    in twenty never answers, roughly how a multi-turn search model spends its turns;
  - the scripted teacher (ground-truth guided plans of 2-5 turns; no HTTP).
Requests are what the server answered (loopback) or the teacher was asked (scripted); wall time is the
whole `evaluate` call. Goal: >= 4x fewer requests and less time than the baseline, and the same table.

    python bench/eval.py [--questions 24] [--k 8] [--concurrency 64]
    python bench/eval.py --smoke        # tiny sizes in a temp dir: proves the bench runs (CI)
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from loopback_teacher import LoopbackTeacher, Plan, planned  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from smoke import parse_args, work_dir  # noqa: E402

from minio3_data.records import ProbeItem, write_items  # noqa: E402
from minio3_data.teacher_options import TeacherOptions  # noqa: E402
from pipelines.eval import eval_config, evaluate  # noqa: E402

WORK = Path("/tmp/minio3-bench-eval")  # kept after a run for a look at its evals
BUDGETS = [4, 8, 12, 16, 24, 32]


def dataset(root: Path, questions: int) -> Path:
    """`questions` 1600x1200 scenes with a small numbered sign each (its box is the target)."""
    (root / "images").mkdir(parents=True)
    items = []
    for i in range(questions):
        im = Image.new("RGB", (1600, 1200), (40 + 5 * i % 200, 90, 140))
        draw = ImageDraw.Draw(im)
        for j in range(60):  # some texture, so JPEG sizes are realistic
            x, y = (97 * j * (i + 3)) % 1560, (61 * j * (i + 5)) % 1160
            draw.rectangle([x, y, x + 40, y + 40], fill=((j * 37) % 255, (j * 91) % 255, (i * 53) % 255))
        box = [700.0 + 10 * i, 500.0, 730.0 + 10 * i, 520.0]
        draw.rectangle(box, fill=(255, 255, 255))
        draw.text((box[0] + 3, box[1] + 3), str(i), fill=(0, 0, 0))
        im.save(root / "images" / f"{i}.jpg", quality=90)
        items.append(
            ProbeItem(
                f"q{i}",
                f"images/{i}.jpg",
                f"What number is on sign {i}?",
                str(i),
                difficulty=("easy", "medium", "hard")[i % 3],
                target_bbox=box,
                width=1600,
                height=1200,
            )
        )
    write_items(root / "test.parquet", items)
    return root


def plans(questions: int, k: int, seed: int = 0) -> dict[str, list[Plan]]:
    rng = random.Random(seed)
    out: dict[str, list[Plan]] = {}
    for i in range(questions):
        row: list[Plan] = []
        for _ in range(k):
            zooms = 0
            while rng.random() < 0.8:
                zooms += 1
            never = rng.random() < 0.05
            row.append((None, None) if never else (zooms, str(i) if rng.random() < 0.6 else str(i + 1)))
        out[f"What number is on sign {i}?"] = row
    return out


def table(summary) -> list:
    return [
        (g.name, [(r.budget, r.avg_at_k, r.ci95, r.over_turn_rate, r.mean_turns) for r in g.rows])
        for g in summary.groups
    ]


def one(
    data: Path, out: Path, budgets: list[int], args: argparse.Namespace, teacher: str
) -> tuple[list, int, float]:
    """One evaluation: (its table, requests, wall seconds)."""
    shutil.rmtree(out, ignore_errors=True)
    options = {"k": args.k, "budgets": budgets, "concurrency": args.concurrency, "progress": False}
    if teacher == "scripted":
        start = time.perf_counter()
        summary = evaluate(eval_config(data, out, teacher="scripted", **options))
        seconds = time.perf_counter() - start
        return table(summary), json.loads((out / "results.json").read_text())["usage"]["requests"], seconds
    with LoopbackTeacher(planned(plans(args.questions, args.k)), latency=0, record=False) as srv:
        client = TeacherOptions(model="policy", base_urls=[srv.openai_url], api_key_env="NONE")
        start = time.perf_counter()
        summary = evaluate(eval_config(data, out, teacher="openai", client=client, **options))
        return table(summary), srv.count, time.perf_counter() - start


def compare(work: Path, args: argparse.Namespace, teacher: str) -> None:
    per_budget, base_requests, base_seconds = [], 0, 0.0
    for b in BUDGETS:
        rows, n, s = one(work / "data", work / f"{teacher}-b{b}", [b], args, teacher)
        per_budget.append(rows)
        base_requests, base_seconds = base_requests + n, base_seconds + s
    single, requests, seconds = one(work / "data", work / f"{teacher}-single", BUDGETS, args, teacher)
    merged = [
        (name, [r for rows in per_budget for g, rs in rows if g == name for r in rs]) for name, _ in single
    ]
    print(
        f"{teacher:9s} one pass per budget: {base_requests:6d} requests {base_seconds:7.1f} s | single pass: "
        f"{requests:6d} requests {seconds:6.1f} s | {base_requests / requests:4.2f}x fewer requests, "
        f"{base_seconds / seconds:4.2f}x less time | same table: {'yes' if merged == single else 'NO'}"
    )
    if teacher != "scripted":
        ((g, rows),) = [t for t in single if t[0] == "all"]
        cells = "  ".join(
            f"{b}: {100 * a:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" for b, a, (lo, hi), _, _ in rows
        )
        print(f"          Avg@{args.k} by budget ({g}): {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workdir", type=Path, help=f"dataset and evals (default {WORK}; with --smoke a temp dir)")
    args = parse_args(parser, questions=3, k=2, concurrency=4)
    with work_dir(args, WORK) as work:
        shutil.rmtree(work / "data", ignore_errors=True)  # each eval dir is replaced by one()
        dataset(work / "data", args.questions)
        print(
            f"budgets {','.join(map(str, BUDGETS))}; {args.questions} questions x k={args.k}; "
            f"concurrency {args.concurrency}; zero-latency loopback policy (OpenAI API, images inline) and scripted"
        )
        for teacher in ("loopback", "scripted"):
            compare(work, args, teacher)


if __name__ == "__main__":
    main()
