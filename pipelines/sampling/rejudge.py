"""Re-judging: a rerun asks the judge again about each answer it did not decide (an LLM judge that failed).

Only the verdict is decided again: no policy or teacher request is made, and the trajectory and its usage are
kept as they are. The new line supersedes the old one without counting as another paid attempt
(`RunState.record`), and the judgement's usage is logged as every judgement's is (`usage.judge_reply`), so a
rerun killed at any moment loses nothing and counts nothing twice."""

from __future__ import annotations

from dataclasses import replace

from minio3_data.judge import Judge
from minio3_data.records import ProbeItem, Trajectory


def undecided(t: Trajectory) -> bool:
    """An answer no judge decided: a rerun asks the judge again."""
    return t.status == "answered" and t.final_answer is not None and t.verdict.label == "unjudged"


async def rejudge(judge: Judge, item: ProbeItem, t: Trajectory) -> Trajectory:
    """`t` with the verdict `judge` gives its answer now (unjudged again when the judge fails again)."""
    assert t.final_answer is not None
    return replace(t, verdict=await judge.judge(item.question, t.final_answer, item.answer, item.options))
