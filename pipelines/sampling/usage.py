"""What a run paid, from its logs: the teacher's requests (attempts.jsonl) and the LLM judge's (replies.jsonl).

Synthesis's stats.json, a merge's and evaluation's results.json all count it here, from every invocation's log
lines, so a resumed, merged or extended run reports what an uninterrupted one would."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from minio3_data.records import Trajectory, Usage, field_values
from minio3_data.teachers.usage import USAGE_UNKNOWN

JUDGE = "judge"  # the `extra` field that marks a replies.jsonl line as the LLM judge's usage (its name)


def spending(attempts: list[Trajectory], superseded: Usage, replies: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A run's `usage` (every teacher request, with what earlier, failed lines of retried attempts paid:
    `superseded`), `judge_usage` (the LLM judge's), and `usage_unknown` (the teacher's replies whose usage could
    not be read: their tokens count as 0)."""
    replies = list(replies)
    return {"usage": _usage_json([superseded, *(t.usage for t in attempts)]),
            "judge_usage": _usage_json(Usage(**r["usage"]) for r in replies if JUDGE in (r.get("extra") or {})),
            "usage_unknown": sum(USAGE_UNKNOWN in (r.get("extra") or {}) for r in replies)}  # fmt: skip


def judge_reply(usage: Usage, judge: str) -> dict[str, Any]:
    """A replies.jsonl line for one judgement's usage: the log a resume, a merge and the stats already read,
    under a key no teacher request has, so the judge is counted and priced once across kills and resumes."""
    key = f"{JUDGE}:{uuid.uuid4().hex}"
    return {"key": key, "text": "", "usage": field_values(usage), "finish_reason": JUDGE, "extra": {JUDGE: judge}}


def _usage_json(usages: Iterable[Usage]) -> dict[str, Any]:
    """The sum of `usages` as plain JSON, its cost rounded to a millionth of a dollar."""
    total = Usage()
    for u in usages:
        total.add(u)
    return field_values(total) | {"cost_usd": round(total.cost_usd, 6)}
