"""How one sampling invocation went, as its console lines and exit code say: the part of synthesis's and
evaluation's summaries that the engine fills in."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from minio3_data.exclusions import EXCLUDED_NAME, Exclusion, exclusion_line
from minio3_data.records import Trajectory


@dataclass
class SamplingOutcome:
    run_dir: Path
    report: str  # the file listing every failure reason (stats.json, results.json)
    attempted_now: int = 0
    stopped: str | None = None  # why it stopped early (target, budget, endpoint, interrupt); None: complete
    crashed: str | None = None  # an unexpected error (a bug) that stopped the run, naming the item
    cache_hits: int = 0  # turns replayed for free from the reply cache
    failures: dict[str, int] = field(default_factory=dict)  # why this invocation's attempts failed: reason -> count
    skipped: list[Exclusion] = field(default_factory=list)  # dataset rows and damaged log lines left out
    damaged: list[str] = field(default_factory=list)  # damaged log lines resume skipped or dropped, per log

    def failure_line(self) -> str | None:
        """One line for the console when attempts failed: how many, and the commonest reason."""
        failed = sum(self.failures.values())
        if not failed:
            return None
        reason, n = Counter(self.failures).most_common(1)[0]
        why = reason if n == failed else f"{reason} ({n} of them; every reason is in {self.report})"
        return f"{failed} of {self.attempted_now} attempts failed: {why}; rerun the same command to retry them"

    def exclusion_line(self) -> str | None:
        return exclusion_line(self.skipped, self.run_dir / EXCLUDED_NAME)


def failure_reason(error: str) -> str:
    """A failed attempt's error without what varies between attempts that failed alike (retry counts)."""
    return re.sub(r" \(gave up after \d+ tr(?:y|ies)\)", "", error)


def failure_reasons(attempts: list[Trajectory]) -> dict[str, int]:
    """How many failed attempts failed for each reason (stats.json's and results.json's `failure_reasons`)."""
    return dict(Counter(failure_reason(t.error or "") for t in attempts if t.status == "failed"))
