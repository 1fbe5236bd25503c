"""The progress bar of a sampling run: kept (or, for an evaluation, correct) / attempted / acceptance / tokens /
cost, with tqdm's ETA; it also counts why this invocation's failed attempts failed."""

from __future__ import annotations

from collections import Counter

from tqdm import tqdm

from minio3_data.records import Trajectory, Usage

from .outcome import failure_reason


class Progress:
    """The bar appears only once the teacher, judge and exemplars are set up (`start`), so a setup error is one
    line."""

    def __init__(self, total: int, kept: int, enabled: bool, desc: str = "synth", counted: str = "kept") -> None:
        self.total, self.enabled, self.bar, self.desc, self.counted = total, enabled, None, desc, counted
        self.kept, self.done, self.finished, self.correct, self.tokens, self.cost = kept, 0, 0, 0, 0, 0.0
        self.failures: Counter[str] = Counter()

    def start(self) -> None:
        self.bar = tqdm(total=self.total, desc=self.desc, unit="attempt", disable=not self.enabled,
                        dynamic_ncols=True)

    def update(self, t: Trajectory, paid: Usage) -> None:
        """`t` has ended (or been judged again), `paid` being what this invocation paid for it."""
        self.done += 1
        self.finished += t.status != "failed"
        if t.status == "failed":
            self.failures[failure_reason(t.error or "")] += 1
        ok = t.correct
        self.correct += ok
        self.kept += ok
        self.tokens += paid.total_tokens
        self.cost += paid.cost_usd
        acc = self.correct / self.finished if self.finished else 0.0
        assert self.bar is not None
        postfix = f"{self.counted}={self.kept} acc={acc:.0%} tok={self.tokens:,} ${self.cost:.2f}"
        self.bar.set_postfix_str(postfix, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
