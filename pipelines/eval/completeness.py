"""What an evaluation lacks, so a partial one never reads as final.

An eval of N rows at k samples should score N·k samples. A sample can be missing from the scores because its
attempt failed (a server that stayed down, a bad image) or never ran (the run was stopped or interrupted), and a
scored answer can be unjudged (the LLM judge did not decide; scored 0). A question then scores over the samples
it has, which is honest only when said: results.md opens with a banner, results.json says `complete: false`
with the counts, scores.parquet has every question's counts, and `minio3 eval` exits 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .metrics import Question

INCOMPLETE_EXIT = 3  # the exit code of an eval whose report is incomplete (2 is bad input, 1 a bug)
INCOMPLETE = "INCOMPLETE EVALUATION: "  # how a banner starts, in eval's reports and in compare's


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _has(n: int) -> str:
    return "has" if n == 1 else "have"


@dataclass
class Completeness:
    """An eval's samples: how many it should have, how many it scored, and why the others are not scored."""

    expected: int  # k samples of every row
    scored: int  # finished samples: the ones in the table
    failed: int  # attempts that failed (rerunning retries them)
    missing: int  # attempts never played (rerunning plays them)
    unjudged: dict[int, int]  # budget -> answers within it that no judge decided (scored 0)
    short: int  # questions scored over fewer samples than they should have
    empty: int  # questions without a finished sample: not in the table
    k: int

    @property
    def complete(self) -> bool:
        return not (self.failed or self.missing or any(self.unjudged.values()))

    def banner(self) -> str | None:
        """One line saying what is incomplete and what to do; None for a complete eval."""
        if self.complete:
            return None
        parts = []
        if self.failed or self.missing:
            parts.append(
                f"{self.expected - self.scored} of {self.expected} samples are not scored ({self.failed} failed, "
                f"{self.missing} never ran; rerun the same command to play them)"
            )
        partial = self.short - self.empty  # scored, over fewer samples than k
        if partial:
            parts.append(
                f"{_n(partial, 'question')} {_has(partial)} fewer than {self.k} samples per row, each scored over "
                "those it has"
            )
        if self.empty:
            parts.append(f"{_n(self.empty, 'question')} {_has(self.empty)} no sample, left out of the table")
        top = max(self.unjudged, default=0)
        if self.unjudged.get(top):
            parts.append(
                f"{_n(self.unjudged[top], 'answer')} at {top} turns unjudged (the judge did not decide; scored 0; "
                "rerun the same command to ask it again)"
            )
        return INCOMPLETE + "; ".join(parts)

    def record(self) -> dict[str, Any]:
        """results.json's `completeness`."""
        return {
            "complete": self.complete, "banner": self.banner(),
            "expected_samples": self.expected, "scored_samples": self.scored,
            "failed_samples": self.failed, "missing_samples": self.missing,
            "unjudged_by_budget": {str(b): n for b, n in self.unjudged.items()},
            "questions_short": self.short, "questions_without_samples": self.empty,
        }  # fmt: skip


def completeness(qs: Sequence[Question], budgets: list[int], k: int) -> Completeness:
    """Counted over every question of the eval, scored or not."""
    return Completeness(
        expected=sum(q.expected for q in qs),
        scored=sum(q.samples for q in qs),
        failed=sum(q.failed for q in qs),
        missing=sum(q.missing for q in qs),
        unjudged={b: int(sum(q.unjudged[i] for q in qs)) for i, b in enumerate(budgets)},
        short=sum(1 for q in qs if q.samples < q.expected),
        empty=sum(1 for q in qs if not q.samples),
        k=k,
    )


__all__ = ["INCOMPLETE", "INCOMPLETE_EXIT", "Completeness", "completeness"]
