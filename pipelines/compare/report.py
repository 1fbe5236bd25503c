"""A comparison's outputs: compare.json (every number), compare.md (the table) and compare.png (turn scaling).

The table has, for each group (all questions, each difficulty, each data source), a row of Avg@k per eval
and, under each compared eval, a row of its difference from the baseline in points with the 95% paired
interval; budgets are columns, as in eval's results.md, so turn scaling reads across.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from minio3_data import __version__
from minio3_data.fsutil import atomic_write_text
from pipelines.eval.budget_plot import Series, budget_plot
from pipelines.eval.completeness import INCOMPLETE
from pipelines.eval.metrics import LEVEL
from pipelines.eval.report import md_text, pct

from .paired import Comparison, Difference

TABLE = "compare.md"
RECORD = "compare.json"
PLOT = "compare.png"
FORMAT = "minio3-compare/1"
METHOD = "paired percentile bootstrap over the shared questions, resampling question groups"


def points(x: float) -> str:
    """A difference of shares in signed points: 0.125 -> +12.5."""
    return f"{100 * x:+.1f}"


def difference_cell(d: Difference, i: int) -> str:
    """B - A at the i-th budget, with its interval: +12.5 [+0.0, +25.0]."""
    return f"{points(d.point[i])} [{points(d.lo[i])}, {points(d.hi[i])}]"


def _by_budget(budgets: list[int], values: np.ndarray) -> dict[str, float]:
    return {str(b): float(v) for b, v in zip(budgets, values)}


def _difference(d: Difference, budgets: list[int]) -> dict[str, dict[str, Any]]:
    return {
        str(b): {"point": float(d.point[j]), "ci95": [float(d.lo[j]), float(d.hi[j])]}
        for j, b in enumerate(budgets)
    }


def _eval_record(c: Comparison, i: int) -> dict[str, Any]:
    e, band = c.evals[i], c.bands[i]
    r = e.record
    return {
        "label": e.label, "dir": str(e.path.resolve()), "model": r.get("model"), "teacher": r.get("teacher"),
        "protocol": r.get("protocol"), "judge": r.get("judge"), "ablation": r.get("ablation"), "k": r.get("k"),
        "temperature": r.get("temperature"), "dataset": r.get("dataset"), "split": r.get("split"),
        "budgets": e.budgets, "questions": len(e.questions), "complete": e.incomplete() is None,
        "ci95_all": None if band is None else {str(b): [float(band[0][j]), float(band[1][j])]
                                               for j, b in enumerate(c.aligned.budgets)},
    }  # fmt: skip


def compare_record(c: Comparison) -> dict[str, Any]:
    """compare.json: what was compared and every number of the table (shares in [0, 1])."""
    budgets = c.aligned.budgets
    return {
        "format": FORMAT,
        "minio3": __version__,
        "baseline": c.labels[0],
        "evals": [_eval_record(c, i) for i in range(len(c.evals))],
        "budgets": budgets,
        "dropped_budgets": c.aligned.dropped_budgets,
        "questions": len(c.aligned.questions),
        "left_out_questions": c.aligned.left_out,
        "interval": {"level": LEVEL, "method": METHOD, "resamples": c.resamples, "seed": c.seed},
        "groups": {s.name: {
            "questions": s.questions,
            "avg_at_k": {label: _by_budget(budgets, avg) for label, avg in zip(c.labels, s.avg_at_k)},
            "difference": {d.label: _difference(d, budgets) for d in s.differences},
        } for s in c.slices},
    }  # fmt: skip


def _who(record: dict[str, Any]) -> str:
    return md_text(record.get("model") or record.get("teacher") or "?")


def markdown(c: Comparison) -> str:
    """compare.md: the evals, then the table, then what was left out."""
    budgets, base = c.aligned.budgets, md_text(c.labels[0])
    banner = incomplete_banner(c)
    lines = [
        *([f"**{md_text(banner)}**", ""] if banner else []),
        f"# Avg@k of {len(c.evals)} evals on {len(c.aligned.questions)} shared questions",
        "",
        f"The baseline is {base}. A row X - {base} is eval X minus {base} on the same questions, in points, "
        f"with a 95% interval by {METHOD} ({c.resamples} resamples, seed {c.seed}).",
        "",
        "| eval | model | teacher | protocol | judge | ablation | k | temperature | questions | dir |",
        "|---|---|---|---|---|---|---:|---:|---:|---|",
    ]
    for i, e in enumerate(c.evals):
        r = e.record
        name = md_text(e.label) + (" (baseline)" if i == 0 else "")
        lines.append(
            f"| {name} | {_who(r)} | {md_text(r.get('teacher'))} | {md_text(r.get('protocol'))} | "
            f"{md_text(r.get('judge'))} | {md_text(r.get('ablation') or 'none')} | {md_text(r.get('k'))} | "
            f"{md_text(r.get('temperature'))} | "
            f"{len(e.questions)} | {md_text(e.path.resolve())} |"
        )
    head = " | ".join(f"{b} turns" for b in budgets)
    lines += ["", f"| group | questions | eval | {head} |", "|---|---:|---|" + "---:|" * len(budgets)]
    for s in c.slices:
        first = f"| {md_text(s.name)} | {s.questions} |"
        lines.append(f"{first} {base} | " + " | ".join(pct(v) for v in s.avg_at_k[0]) + " |")
        for avg, d in zip(s.avg_at_k[1:], s.differences):
            lines.append(f"{first} {md_text(d.label)} | " + " | ".join(pct(v) for v in avg) + " |")
            cells = " | ".join(difference_cell(d, j) for j in range(len(budgets)))
            lines.append(f"{first} {md_text(d.label)} - {base} | {cells} |")
    lines += ["", "Avg@k in %; differences in points [95% paired bootstrap interval]."]
    for line in left_out_lines(c):
        lines += ["", f"{line}."]
    return "\n".join(lines) + "\n"


def incomplete_banner(c: Comparison) -> str | None:
    """One line naming each compared eval whose results.json says `complete: false` and what it lacks, so a
    difference from a partial eval never reads as final; None when every eval is complete."""
    partial = [f"{e.label} ({why})" for e in c.evals if (why := e.incomplete())]
    if not partial:
        return None
    return f"{INCOMPLETE}{'; '.join(partial)}: Avg@k over the samples scored, so its differences are not final"


def left_out_lines(c: Comparison) -> list[str]:
    """What the comparison did not use: budgets some eval did not score, questions some eval lacks."""
    lines = []
    if c.aligned.dropped_budgets:
        dropped = "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in c.aligned.dropped_budgets.items())
        lines.append(f"budgets left out (not scored by every eval): {dropped}")
    if c.aligned.left_out:
        left = "; ".join(f"{k}: {n}" for k, n in c.aligned.left_out.items())
        lines.append(f"questions left out (not in every eval, --intersection): {left}")
    return lines


def plot(path: Path, c: Comparison) -> Path:
    """Turn scaling: Avg@k of all shared questions against budget, one line per eval with its own band."""
    everything = c.slices[0]
    series = [
        Series(f"{e.label}: {e.record.get('model') or e.record.get('teacher')}, {e.record.get('protocol')}"
               + (f", ablation {e.record['ablation']}" if e.record.get("ablation") else ""), avg, band)
        for e, avg, band in zip(c.evals, everything.avg_at_k, c.bands)
    ]
    return budget_plot(
        path, c.aligned.budgets, series, ylabel="Avg@k (%)",
        title=f"Avg@k against turn budget, {everything.questions} shared questions",
    )  # fmt: skip


def write_report(out: Path, c: Comparison) -> None:
    atomic_write_text(out / RECORD, json.dumps(compare_record(c), indent=2, sort_keys=True) + "\n")
    atomic_write_text(out / TABLE, markdown(c))
    plot(out / PLOT, c)


__all__ = [
    "PLOT", "RECORD", "TABLE", "compare_record", "difference_cell", "incomplete_banner", "left_out_lines",
    "write_report",
]
