"""`minio3 eval`: Avg@k of a policy at growing turn budgets (test-time turn scaling).

Evaluation is synthesis without the keep-filter: the sampling engine (`pipelines.sampling`: the attempt
loop, the resumable run store, the run-dir lock, teachers with their rate limits and circuit breakers, the
protocol profiles, the judge) samples k trajectories per question at the largest budget, with no exemplars
in context; every smaller budget is scored from the same trajectories (budgets.py says why that is exact).
The run dir is a synthesis run dir plus the report: kill it and rerun the same command to resume. Rerun it with
a larger largest budget to extend it: only the trajectories still running at the old one are played on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.outputs import claim_output
from minio3_data.records import Trajectory, read_items, write_trajectories
from minio3_data.store import RUN_JSON, run_identity
from pipelines.sampling.config import SynthConfig
from pipelines.sampling.engine import Stage, sample
from pipelines.sampling.outcome import SamplingOutcome
from pipelines.sampling.run_dir import read_inputs

from .budgets import still_running
from .completeness import INCOMPLETE_EXIT, Completeness, completeness
from .config import DEFAULT_BUDGETS, DEFAULT_K, EvalConfig, eval_config, parse_budgets
from .metrics import GroupResult, group_results, questions
from .report import PLOT, RESULTS, SCORES, TABLE, results_record, write_report

TRAJECTORIES = "trajectories.parquet"  # every finished attempt, at the largest budget
GROWS = ("max_turns", "max_images")  # a run dir's options a rerun may raise: its trajectories play on
EVALUATION = Stage("eval", "eval", "correct", RESULTS)


@dataclass
class EvalSummary:
    sampling: SamplingOutcome  # how this invocation's sampling went
    k: int
    budgets: list[int]
    groups: list[GroupResult]
    complete: Completeness
    max_turns: int  # the sampling pass's turn cap
    extended_from: int | None = None  # the cap this invocation raised, when it extended the pass
    continued: int = 0  # trajectories it played on from there

    def outputs(self) -> list[Path]:
        """The report files written (no plot when no question has a finished sample)."""
        return [p for p in (self.sampling.run_dir / name for name in (TABLE, RESULTS, PLOT, SCORES, TRAJECTORIES)) if p.exists()]

    def banner(self) -> str | None:
        """The first line of an incomplete eval's report (None when complete)."""
        return self.complete.banner()

    def lines(self) -> list[str]:
        """The console summary: an extension, Avg@k per group and budget, the over-turn rate, the outputs."""
        lines = []
        if self.extended_from is not None or self.continued:
            earlier = f"{self.extended_from} turns" if self.extended_from else "the earlier cap"
            lines.append(
                f"extended the sampling pass to {self.max_turns} turns: played on {self.continued} "
                f"trajector{'y' if self.continued == 1 else 'ies'} still running at {earlier}"
            )
        for g in self.groups:
            cells = ", ".join(f"{r.budget}: {100 * r.avg_at_k:.1f}" for r in g.rows)
            lines.append(f"{g.name} ({g.questions} question{'' if g.questions == 1 else 's'}) Avg@{self.k} % by turn budget: {cells}")
        if self.groups:
            rows = self.groups[0].rows
            lines.append(
                "over-turn % by budget: "
                + ", ".join(f"{r.budget}: {100 * r.over_turn_rate:.1f}" for r in rows)
            )
        return [*lines, f"{self.sampling.run_dir}: " + ", ".join(p.name for p in self.outputs())]


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


def sampling_run(run: SynthConfig) -> tuple[SynthConfig, int | None]:
    """The pass to sample into `run.out`, and the turn cap it extends (None: none). A run dir sampled at a
    larger largest budget serves these budgets as it is, so its cap is kept; one sampled at a smaller one is
    extended to this cap."""
    if not (Path(run.out) / RUN_JSON).is_file():
        return run, None
    top = run_identity(run.out).get("max_turns")
    if not isinstance(top, int) or isinstance(top, bool) or top == run.max_turns:
        return run, None  # an unusable cap is refused by the sampler, naming it
    if top > run.max_turns:
        return replace(run, max_turns=top, max_images=top), None
    return run, top


def evaluate(cfg: EvalConfig) -> EvalSummary:
    """Sample (resume, or extend) the run of `cfg`, then score it at every budget and write the report."""
    with claim_output(cfg.run.out, read_inputs(cfg.run), resumes=True):
        check_dataset(cfg.run)
        run, extended_from = sampling_run(cfg.run)
        cfg = replace(cfg, run=run)

        def plays_on(t: Trajectory) -> bool:
            return still_running(t) and t.num_turns < run.max_turns

        s = sample(run, EVALUATION, may_grow=GROWS, reopen=plays_on)
        qs = questions(s.items, s.attempts, cfg.budgets, cfg.k)
        groups = group_results(qs, cfg.budgets, cfg.resamples, run.seed)
        complete = completeness(qs, cfg.budgets, cfg.k)
        out = Path(run.out)
        write_trajectories(out / TRAJECTORIES, [t for t in s.attempts if t.status != "failed"])
        extra = {**s.report(), "continued_trajectories": s.continued}
        record = results_record(cfg, groups, s.attempts, s.state.superseded, s.state.replies.values(), complete, extra)
        write_report(out, record, groups, qs)
    return EvalSummary(s.outcome, cfg.k, cfg.budgets, groups, complete, run.max_turns, extended_from, s.continued)


__all__ = [
    "DEFAULT_BUDGETS",
    "DEFAULT_K",
    "INCOMPLETE_EXIT",
    "EvalConfig",
    "EvalSummary",
    "eval_config",
    "evaluate",
    "parse_budgets",
]
