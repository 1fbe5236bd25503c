"""stats.json and stats.png of a run: what was attempted, kept, spent, and how the kept set looks."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from minio3_data.fsutil import atomic_path, atomic_write_text
from minio3_data.records import DIFFICULTIES, Trajectory, Usage, field_values
from minio3_data.teachers.usage import USAGE_UNKNOWN

from .curate import primary_pattern


def run_stats(
    attempts: list[Trajectory], kept: list[Trajectory], candidates: int, superseded: Usage, extra: dict[str, Any]
) -> dict:
    """`superseded`: what earlier lines of retried attempts paid, so `usage` counts every request made."""
    df = pl.DataFrame(
        {
            "status": [t.status for t in attempts],
            "verdict": [t.verdict.label for t in attempts],
            "difficulty": [t.difficulty for t in attempts],
            "correct": [t.correct for t in attempts],
            "turns": [t.num_turns for t in attempts],
        },
        schema={"status": pl.String, "verdict": pl.String, "difficulty": pl.String, "correct": pl.Boolean,
                "turns": pl.Int64},
    )
    finished = df.filter(pl.col("status") != "failed")
    by_diff = (
        finished.group_by("difficulty")
        .agg(pl.len().alias("attempts"), pl.col("correct").sum().alias("correct"))
        .sort("difficulty")
    )
    return {
        "attempts": len(attempts),
        "finished": finished.height,
        "failed": df.height - finished.height,
        "correct": candidates,
        "kept": len(kept),
        "acceptance": round(candidates / finished.height, 4) if finished.height else 0.0,
        "status": dict(Counter(df["status"].to_list())),
        "verdict": dict(Counter(finished["verdict"].to_list())),
        "acceptance_by_difficulty": {
            r["difficulty"]: {"attempts": r["attempts"], "correct": r["correct"],
                              "acceptance": round(r["correct"] / r["attempts"], 4)}
            for r in by_diff.iter_rows(named=True)
        },
        "kept_turns_histogram": dict(sorted(Counter(t.num_turns for t in kept).items())),
        "kept_patterns": dict(Counter(p for t in kept for p in t.patterns)),
        "kept_primary_pattern": dict(Counter(primary_pattern(t.patterns) for t in kept)),
        "usage": total_usage(attempts, superseded),
        **extra,
    }


def total_usage(attempts: list[Trajectory], superseded: Usage) -> dict[str, Any]:
    """Every request a run made, as plain JSON: its attempts' usage plus what earlier, failed lines of retried
    attempts paid (`superseded`)."""
    return _usage_json([superseded, *(t.usage for t in attempts)])


JUDGE = "judge"  # the `extra` field that marks a replies.jsonl line as the LLM judge's usage (its name)


def judge_reply(usage: Usage, judge: str) -> dict[str, Any]:
    """A replies.jsonl line for one judgement's usage: the log a resume, a merge and the stats already read,
    under a key no teacher request has, so the judge is counted and priced once across kills and resumes."""
    key = f"{JUDGE}:{uuid.uuid4().hex}"
    return {"key": key, "text": "", "usage": field_values(usage), "finish_reason": JUDGE, "extra": {JUDGE: judge}}


def judge_usage(replies: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """What the LLM judge consumed over the whole run (stats.json's `judge_usage`, beside the teacher's `usage`)."""
    return _usage_json(Usage(**r["usage"]) for r in replies if JUDGE in (r.get("extra") or {}))


def unknown_usage(replies: Iterable[dict[str, Any]]) -> int:
    """How many of the teacher's replies came with usage it could not read (their tokens count as 0)."""
    return sum(USAGE_UNKNOWN in (r.get("extra") or {}) for r in replies)


def _usage_json(usages: Iterable[Usage]) -> dict[str, Any]:
    total = Usage()
    for u in usages:
        total.add(u)
    return field_values(total) | {"cost_usd": round(total.cost_usd, 6)}


def write_stats(run_dir: Path, stats: dict) -> None:
    atomic_write_text(run_dir / "stats.json", json.dumps(stats, indent=2, sort_keys=True) + "\n")


def plot_stats(run_dir: Path, stats: dict) -> Path:
    """Three panels: kept turns histogram, acceptance by difficulty, kept pattern mix."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    hist = stats["kept_turns_histogram"]
    axes[0].bar([int(k) for k in hist], list(hist.values()), color="#4c72b0")
    axes[0].set(title="Kept trajectories by number of turns", xlabel="assistant turns", ylabel="trajectories")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    acc = stats["acceptance_by_difficulty"]
    diffs = [d for d in DIFFICULTIES if d in acc] + [d for d in acc if d not in DIFFICULTIES]
    axes[1].bar(diffs, [acc[d]["acceptance"] for d in diffs], color="#55a868")
    for i, d in enumerate(diffs):
        axes[1].text(i, acc[d]["acceptance"], f"{acc[d]['correct']}/{acc[d]['attempts']}", ha="center", va="bottom")
    axes[1].set(title="Acceptance by difficulty", ylabel="correct / finished attempts", ylim=(0, 1.1))
    mix = stats["kept_primary_pattern"]
    axes[2].bar(list(mix), list(mix.values()), color="#c44e52")
    axes[2].set(title="Kept pattern mix (primary tag)", ylabel="trajectories")
    axes[2].tick_params(axis="x", rotation=20)
    fig.tight_layout()
    out = run_dir / "stats.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out
