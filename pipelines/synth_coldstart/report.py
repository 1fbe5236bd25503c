"""stats.json and stats.png of a run: what was attempted, kept, spent, and how the kept set looks."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from minio3_data.fsutil import atomic_path, atomic_write_text
from minio3_data.records import DIFFICULTIES, Trajectory, Usage
from pipelines.sampling.usage import spending

from .curate import primary_pattern


def run_stats(
    attempts: list[Trajectory], kept: list[Trajectory], candidates: int, superseded: Usage,
    replies: Iterable[dict[str, Any]], extra: dict[str, Any],
) -> dict:
    """`superseded`: what earlier lines of retried attempts paid, so `usage` counts every request made;
    `replies`: the reply log, where the LLM judge's usage is."""
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
        **spending(attempts, superseded, replies),
        **extra,
    }


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
