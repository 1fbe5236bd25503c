"""An evaluation's outputs: results.json, results.md (the table), accuracy.png, scores.parquet.

Everything is rebuilt from the run's whole log on every invocation, so a resumed or rescored run ends with
exactly what an uninterrupted one would have written.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from minio3_data import __version__
from minio3_data.errors import BadInputError
from minio3_data.fsutil import atomic_write_text
from minio3_data.records import Trajectory, Usage, write_parquet
from pipelines.sampling.outcome import failure_reasons
from pipelines.sampling.usage import spending

from .budget_plot import Series, budget_plot
from .config import EvalConfig, check_budgets
from .completeness import Completeness
from .metrics import LEVEL, GroupResult, Question, scored

RESULTS = "results.json"
TABLE = "results.md"
PLOT = "accuracy.png"
SCORES = "scores.parquet"
FORMAT = "minio3-eval/1"
ABLATION_NOTE = (
    "Ablation `{name}` (docs/eval.md, \"Does the model use what it sees?\"): for accuracy with and without it, "
    "compare this eval with the plain one: `minio3 compare PLAIN_EVAL THIS_EVAL --out DIR`."
)

SCORES_SCHEMA = pa.schema(
    [("question", pa.string()), ("difficulty", pa.string()), ("source", pa.string()), ("kind", pa.string()),
     ("budget", pa.int64()), ("samples", pa.int64()), ("expected", pa.int64()), ("failed", pa.int64()),
     ("missing", pa.int64()), ("correct", pa.int64()), ("score", pa.float64()), ("over_turn", pa.int64()),
     ("turns", pa.int64()), ("unjudged", pa.int64())]
)  # fmt: skip


def results_record(
    cfg: EvalConfig,
    groups: list[GroupResult],
    attempts: list[Trajectory],
    superseded: Usage,
    replies: Iterable[dict[str, Any]],
    complete: Completeness,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """results.json: what was evaluated, how, and the numbers (shares in [0, 1]); `complete` false, with the
    counts in `completeness`, when samples failed, never ran or are unjudged."""
    run = cfg.run
    finished = [t for t in attempts if t.status != "failed"]
    return {
        "format": FORMAT,
        "minio3": __version__,
        "complete": complete.complete,
        "completeness": complete.record(),
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
        "context_reserve": run.reserve,
        "ablation": run.ablate,
        "seed": run.seed,
        "budgets": cfg.budgets,
        "max_turns": run.max_turns,
        "single_pass": f"one sampling pass at {run.max_turns} turns serves every budget: see docs/eval.md",
        "interval": {"level": LEVEL, "method": "percentile bootstrap over questions",
                     "resamples": cfg.resamples, "seed": run.seed},
        "groups": {g.name: {"questions": g.questions, "samples": g.samples,
                            "by_budget": {str(r.budget): asdict(r) for r in g.rows}} for g in groups},
        "attempts": {"finished": len(finished), "failed": len(attempts) - len(finished),
                     "status": dict(Counter(t.status for t in finished)),
                     "verdict": dict(Counter(t.verdict.label for t in finished)),
                     "failure_reasons": failure_reasons(attempts)},
        **spending(attempts, superseded, replies),
        **extra,
    }  # fmt: skip


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def md_text(value: Any) -> str:
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
        md_text(v) for v in (record["model"] or record["teacher"], record["dataset"], record["split"])
    )
    banner, ablation = record["completeness"]["banner"], record["ablation"]
    lines = [
        *([f"**{banner}**", ""] if banner else []),
        f"# Avg@{record['k']} of {who} on {dataset} ({split}){f', ablation {ablation}' if ablation else ''}",
        "",
        (f"teacher {md_text(record['teacher'])}, protocol {record['protocol']}, "
         f"judge {md_text(record['judge'])}, temperature {record['temperature']}, "
         f"{record['max_tokens']} tokens per turn in a {record['context_tokens']}-token context; "
         f"one sampling pass at {record['max_turns']} turns scored at every budget."),
        "",
        *([ABLATION_NOTE.format(name=ablation), ""] if ablation else []),
        f"| group | questions | {head} |",
        "|---|---:|" + "---:|" * len(budgets),
    ]
    for g in groups:
        cells = " | ".join(f"{pct(r.avg_at_k)} [{pct(r.ci95[0])}, {pct(r.ci95[1])}]" for r in g.rows)
        lines.append(f"| {md_text(g.name)} | {g.questions} | {cells} |")
    if groups:
        rows = groups[0].rows
        lines += [
            "",
            f"Avg@{record['k']} in %, [95% bootstrap interval over questions].",
            "",
            f"| all questions | {head} |",
            "|---|" + "---:|" * len(budgets),
            "| over-turn rate (%) | " + " | ".join(pct(r.over_turn_rate) for r in rows) + " |",
            "| mean turns | " + " | ".join(f"{r.mean_turns:.2f}" for r in rows) + " |",
            "| unjudged answers (scored 0) | " + " | ".join(str(r.unjudged) for r in rows) + " |",
            f"| samples scored, of {record['completeness']['expected_samples']} | "
            + " | ".join(str(record['completeness']['scored_samples']) for _ in rows) + " |",
        ]
    return "\n".join(lines) + "\n"


def plot(out: Path, record: dict[str, Any], groups: list[GroupResult]) -> Path:
    """Accuracy against turn budget, one line (with its 95% band) per group."""
    series = [
        Series(f"{g.name} ({g.questions} q)", [r.avg_at_k for r in g.rows],
               ([r.ci95[0] for r in g.rows], [r.ci95[1] for r in g.rows]))
        for g in groups
    ]  # fmt: skip
    return budget_plot(
        out / PLOT, record["budgets"], series, ylabel=f"Avg@{record['k']} (%)",
        title=f"{record['model'] or record['teacher']}: accuracy against turn budget"
        + (f", ablation {record['ablation']}" if record["ablation"] else "")
        + ("" if record["complete"] else " (INCOMPLETE)"),
    )  # fmt: skip


def score_rows(qs: list[Question], budgets: list[int]) -> list[dict[str, Any]]:
    """One row per (question with a finished sample, budget): what scores.parquet holds, with the samples the
    question should have had and those that failed or never ran."""
    return [
        {"question": q.key, "difficulty": q.difficulty, "source": q.source, "kind": q.kind, "budget": b,
         "samples": q.samples, "expected": q.expected, "failed": q.failed, "missing": q.missing,
         "correct": int(q.correct[i]), "score": float(q.score[i]), "over_turn": int(q.over_turn[i]),
         "turns": int(q.turns[i]), "unjudged": int(q.unjudged[i])}
        for q in scored(qs) for i, b in enumerate(budgets)
    ]  # fmt: skip


def read_results(eval_dir: Path) -> tuple[dict[str, Any], list[int]]:
    """An eval dir's results.json and the budgets it was scored at, as compare and view read it; a file that
    cannot be read or lacks valid budgets is a one-line error naming it."""
    where = eval_dir / RESULTS
    try:
        record = json.loads(where.read_text(encoding="utf-8"))
        return record, check_budgets(record["budgets"])
    except (OSError, ValueError, TypeError, KeyError, BadInputError):
        raise BadInputError(
            f"{where}: unreadable or without its budgets; rerun minio3 eval to rewrite it"
        ) from None


def write_report(out: Path, record: dict[str, Any], groups: list[GroupResult], qs: list[Question]) -> None:
    atomic_write_text(out / RESULTS, json.dumps(record, indent=2, sort_keys=True) + "\n")
    atomic_write_text(out / TABLE, markdown(record, groups))
    write_parquet(out / SCORES, score_rows(qs, record["budgets"]), SCORES_SCHEMA)
    if groups:
        plot(out, record, groups)


__all__ = [
    "PLOT", "RESULTS", "SCORES", "TABLE", "markdown", "md_text", "pct", "read_results", "results_record",
    "write_report",
]  # fmt: skip
