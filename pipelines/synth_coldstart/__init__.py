"""`synth_coldstart`: run a teacher over a dataset split and keep the correct trajectories.

The sampling engine (`pipelines.sampling`: the attempt loop, the resumable run store, the run-dir lock, teachers,
the judge) plays the attempts; synthesis curates them: the kept set, stats and plot are rebuilt from the whole
log at the end, so a resumed run ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minio3_data.outputs import claim_output
from minio3_data.records import ProbeItem, Trajectory, Usage, write_trajectories
from pipelines.sampling.config import SynthConfig
from pipelines.sampling.engine import sample
from pipelines.sampling.outcome import SamplingOutcome, failure_reasons
from pipelines.sampling.run_dir import read_inputs

from .curate import curate
from .patterns import check_mix
from .report import plot_stats, run_stats, write_stats

__all__ = ["SynthConfig", "SynthSummary", "finalize", "synth_coldstart"]


@dataclass
class SynthSummary:
    sampling: SamplingOutcome  # how this invocation went
    attempts: int
    kept: int
    acceptance: float
    cost_usd: float


def finalize(
    cfg: SynthConfig, items: list[ProbeItem], attempts: list[Trajectory], superseded: Usage,
    replies: Iterable[dict[str, Any]], extra: dict,
) -> dict:
    """Rebuild the kept set, stats.json and stats.png from every attempt in the log (and what the earlier,
    failed lines of retried attempts paid) and every reply (what the LLM judge paid)."""
    out = Path(cfg.out)
    order = {it.id: k for k, it in enumerate(items)}
    result = curate(attempts, order, max_per_item=cfg.max_per_item, mix=cfg.mix or None, target=cfg.target)
    write_trajectories(out / "trajectories.parquet", result.kept)
    stats = run_stats(attempts, result.kept, result.candidates, superseded, replies,
                      {"failure_reasons": failure_reasons(attempts), **extra})  # fmt: skip
    write_stats(out, stats)
    plot_stats(out, stats)
    return stats


def synth_coldstart(cfg: SynthConfig) -> SynthSummary:
    """Run or resume the synthesis of `cfg`; the run dir is locked for the whole run (one writer). Teachers are
    read as the profile reads teachers (`ProtocolProfile.for_teachers`); evaluation reads its policy strictly."""
    check_mix(cfg.mix)
    with claim_output(cfg.out, read_inputs(cfg), resumes=True):
        cfg = dataclasses.replace(cfg, protocol=cfg.protocol.for_teachers())
        s = sample(cfg)
        stats = finalize(cfg, s.items, s.attempts, s.state.superseded, s.state.replies.values(), s.report())
    return SynthSummary(s.outcome, stats["attempts"], stats["kept"], stats["acceptance"], stats["usage"]["cost_usd"])
