"""An evaluation's outputs: results.json, results.md (the table), accuracy.png, scores.parquet.

Everything is rebuilt from the run's whole log on every invocation, so a resumed or rescored run ends with
exactly what an uninterrupted one would have written.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from minio3_data import __version__
from minio3_data.fsutil import atomic_path, atomic_write_text
from minio3_data.records import Trajectory, Usage, write_parquet
from pipelines.synth_coldstart import failure_reasons
from pipelines.synth_coldstart.report import total_usage

from .config import EvalConfig
from .metrics import LEVEL, GroupResult, Question

RESULTS = "results.json"
TABLE = "results.md"
PLOT = "accuracy.png"
SCORES = "scores.parquet"
FORMAT = "minio3-eval/1"

SCORES_SCHEMA = pa.schema(
    [("question", pa.string()), ("difficulty", pa.string()), ("source", pa.string()), ("budget", pa.int64()),
     ("samples", pa.int64()), ("correct", pa.int64()), ("score", pa.float64()), ("over_turn", pa.int64()),
     ("turns", pa.int64())]
)  # fmt: skip


def results_record(
    cfg: EvalConfig,
    groups: list[GroupResult],
    attempts: list[Trajectory],
    superseded: Usage,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """results.json: what was evaluated, how, and the numbers (shares in [0, 1])."""
    run = cfg.run
    finished = [t for t in attempts if t.status != "failed"]
    return {
        "format": FORMAT,
        "minio3": __version__,
        "dataset": str(Path(run.dataset).resolve()),
        "split": run.split,
        "teacher": run.teacher,
        "model": run.client.model,
        "protocol": run.protocol.name,
        "judge": run.judge,
        "k": cfg.k,
        "temperature": run.temperature,
        "max_tokens": run.max_tokens,
        "context_tokens": run.context_tokens,
        "seed": run.seed,
        "budgets": cfg.budgets,
        "single_pass": f"one sampling pass at {max(cfg.budgets)} turns serves every budget: see docs/eval.md",
        "interval": {"level": LEVEL, "method": "percentile bootstrap over questions",
                     "resamples": cfg.resamples, "seed": run.seed},
        "groups": {g.name: {"questions": g.questions, "samples": g.samples,
                            "by_budget": {str(r.budget): asdict(r) for r in g.rows}} for g in groups},
        "attempts": {"finished": len(finished), "failed": len(attempts) - len(finished),
                     "status": dict(Counter(t.status for t in finished)),
                     "verdict": dict(Counter(t.verdict.label for t in finished)),
                     "failure_reasons": failure_reasons(attempts)},
        "usage": total_usage(attempts, superseded),
        **extra,
    }  # fmt: skip


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _md(value: Any) -> str:
    """Text from the data (a group's source, a model or dataset name) as results.md shows it, whatever it
    holds: HTML escaped (a Markdown renderer would run it), `|` escaped (it would split a table cell), newlines
    as spaces (they would end the row)."""
    text = html.escape(str(value), quote=False).replace("|", "\\|")
    return " ".join(text.splitlines())


def markdown(record: dict[str, Any], groups: list[GroupResult]) -> str:
    """The table a paper prints: Avg@k [95% CI] per group and budget, then over-turn rate and mean turns."""
    budgets = record["budgets"]
    head = " | ".join(f"{b} turns" for b in budgets)
    who, dataset, split = (
        _md(v) for v in (record["model"] or record["teacher"], record["dataset"], record["split"])
    )
    lines = [
        f"# Avg@{record['k']} of {who} on {dataset} ({split})",
        "",
        (f"teacher {_md(record['teacher'])}, protocol {record['protocol']}, judge {_md(record['judge'])}, "
         f"temperature {record['temperature']}; one sampling pass at {budgets[-1]} turns scored at every budget."),
        "",
        f"| group | questions | {head} |",
        "|---|---:|" + "---:|" * len(budgets),
    ]
    for g in groups:
        cells = " | ".join(f"{_pct(r.avg_at_k)} [{_pct(r.ci95[0])}, {_pct(r.ci95[1])}]" for r in g.rows)
        lines.append(f"| {_md(g.name)} | {g.questions} | {cells} |")
    if groups:
        rows = groups[0].rows
        lines += [
            "",
            f"Avg@{record['k']} in %, [95% bootstrap interval over questions].",
            "",
            f"| all questions | {head} |",
            "|---|" + "---:|" * len(budgets),
            "| over-turn rate (%) | " + " | ".join(_pct(r.over_turn_rate) for r in rows) + " |",
            "| mean turns | " + " | ".join(f"{r.mean_turns:.2f}" for r in rows) + " |",
        ]
    return "\n".join(lines) + "\n"


def plot(out: Path, record: dict[str, Any], groups: list[GroupResult]) -> Path:
    """Accuracy against turn budget, one line (with its 95% band) per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for g in groups:
        xs = [r.budget for r in g.rows]
        (line,) = ax.plot(
            xs, [100 * r.avg_at_k for r in g.rows], marker="o", label=f"{g.name} ({g.questions} q)"
        )
        ax.fill_between(
            xs,
            [100 * r.ci95[0] for r in g.rows],
            [100 * r.ci95[1] for r in g.rows],
            color=line.get_color(),
            alpha=0.12,
        )
    ax.set(
        xlabel="turn budget",
        ylabel=f"Avg@{record['k']} (%)",
        xticks=record["budgets"],
        title=f"{record['model'] or record['teacher']}: accuracy against turn budget",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = out / PLOT
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path


def score_rows(qs: list[Question], budgets: list[int]) -> list[dict[str, Any]]:
    """One row per (question, budget): what scores.parquet holds."""
    return [
        {"question": q.key, "difficulty": q.difficulty, "source": q.source, "budget": b, "samples": q.samples,
         "correct": int(q.correct[i]), "score": float(q.score[i]), "over_turn": int(q.over_turn[i]),
         "turns": int(q.turns[i])}
        for q in qs for i, b in enumerate(budgets)
    ]  # fmt: skip


def write_report(out: Path, record: dict[str, Any], groups: list[GroupResult], qs: list[Question]) -> None:
    atomic_write_text(out / RESULTS, json.dumps(record, indent=2, sort_keys=True) + "\n")
    atomic_write_text(out / TABLE, markdown(record, groups))
    write_parquet(out / SCORES, score_rows(qs, record["budgets"]), SCORES_SCHEMA)
    if groups:
        plot(out, record, groups)


__all__ = ["PLOT", "RESULTS", "SCORES", "TABLE", "markdown", "results_record", "write_report"]
