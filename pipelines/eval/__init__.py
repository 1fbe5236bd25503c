"""`minio3 eval`: Avg@k of a policy at growing turn budgets (test-time turn scaling).

Evaluation is synthesis without the keep-filter: the synthesis engine (`synth_coldstart.sample`: the attempt
loop, the resumable run store, the run-dir lock, teachers with their rate limits and circuit breakers, the
protocol profiles, the judge) samples k trajectories per question at the largest budget, with no exemplars
in context; every smaller budget is scored from the same trajectories (budgets.py says why that is exact).
The run dir is a synthesis run dir plus the report: kill it and rerun the same command to resume.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.outputs import claim_output
from minio3_data.records import read_items, write_trajectories
from pipelines.synth_coldstart import SynthConfig, failure_line, sample, skipped_line

from .config import DEFAULT_BUDGETS, DEFAULT_K, EvalConfig, eval_config, parse_budgets
from .metrics import GroupResult, group_results, questions
from .report import PLOT, RESULTS, SCORES, TABLE, results_record, write_report

TRAJECTORIES = "trajectories.parquet"  # every finished attempt, at the largest budget


@dataclass
class EvalSummary:
    out: Path
    k: int
    budgets: list[int]
    groups: list[GroupResult]
    attempted_now: int
    failures: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    stopped: str | None = None
    crashed: str | None = None
    damaged: list[str] = field(default_factory=list)
    cache_hits: int = 0

    def failure_line(self) -> str | None:
        return failure_line(self.failures, self.attempted_now, RESULTS)

    def skipped_line(self) -> str | None:
        return skipped_line(self.skipped, RESULTS)

    def outputs(self) -> list[Path]:
        """The report files written (no plot when no question has a finished sample)."""
        return [p for p in (self.out / name for name in (TABLE, RESULTS, PLOT, SCORES, TRAJECTORIES)) if p.exists()]

    def lines(self) -> list[str]:
        """The console summary: Avg@k per group and budget, the over-turn rate, where the outputs are."""
        lines = []
        for g in self.groups:
            cells = ", ".join(f"{r.budget}: {100 * r.avg_at_k:.1f}" for r in g.rows)
            lines.append(f"{g.name} ({g.questions} question{'' if g.questions == 1 else 's'}) Avg@{self.k} % by turn budget: {cells}")
        if self.groups:
            rows = self.groups[0].rows
            lines.append(
                "over-turn % by budget: "
                + ", ".join(f"{r.budget}: {100 * r.over_turn_rate:.1f}" for r in rows)
            )
        return [*lines, f"{self.out}: " + ", ".join(p.name for p in self.outputs())]


def check_dataset(run: SynthConfig) -> None:
    """One line, before anything is sampled, for a split that cannot be evaluated at all: without a single
    answer to score against, or without a single target box for the scripted teacher to search for."""
    path = Path(run.dataset) / f"{run.split}.parquet"
    items = read_items(path)
    if not any(isinstance(it.answer, str) and it.answer.strip() for it in items):
        raise BadInputError(
            f"{path}: no row has an answer; evaluation scores against the `answer` column, so import the "
            "benchmark with its ground truth (minio3 build-visualprobe --source ...)"
        )
    if run.teacher == "scripted" and not any(it.target_bbox for it in items):
        raise BadInputError(
            f"{path}: no row has a target_bbox, which the scripted teacher needs; evaluate a model with "
            "--teacher openai or gemini"
        )


def evaluate(cfg: EvalConfig) -> EvalSummary:
    """Sample (or resume) the run of `cfg`, then score it at every budget and write the report."""
    run = cfg.run
    with claim_output(run.out, [("--dataset", run.dataset)]):
        check_dataset(run)
        s = sample(run, desc="eval", counted="correct")
        qs = questions(s.items, s.attempts, cfg.budgets)
        groups = group_results(qs, cfg.budgets, cfg.resamples, run.seed)
        out = Path(run.out)
        write_trajectories(out / TRAJECTORIES, [t for t in s.attempts if t.status != "failed"])
        write_report(out, results_record(cfg, groups, s.attempts, s.state.superseded, s.report()), groups, qs)
    return EvalSummary(
        out=out, k=cfg.k, budgets=cfg.budgets, groups=groups, attempted_now=s.attempted_now,
        failures=s.failures, skipped=s.skipped, stopped=s.stopped, crashed=s.crashed,
        damaged=[d.describe() for d in s.state.damaged], cache_hits=s.cache_hits,
    )  # fmt: skip


__all__ = [
    "DEFAULT_BUDGETS",
    "DEFAULT_K",
    "EvalConfig",
    "EvalSummary",
    "eval_config",
    "evaluate",
    "parse_budgets",
]
