"""The RL reward, as a verl custom reward function (`reward.custom_reward_function.path` = this file, `name` =
`compute_score`): 1 when the trajectory's first `<answer>` is correct, else 0; the release's reward (acc
weight 1, format and tool weights 0).

  - The answer is the one the `minio3_zoom` agent loop recorded (`extra_info["answer"]`: the first
    `<answer>` across the assistant turns, as the protocol profile reads them). verl's `solution_str` cannot
    serve: it also holds the observation turns, whose text says "put your final answer inside <answer> and
    </answer>".
  - An over-turn trajectory scores 0 without a judge call: it stays in its group's mean and std with
    reward 0 and is masked out of the loss by the loop. No answer scores 0 without a judge call too.
  - The judge is `minio3_data.judge`: the rule judge by default (`judge="rule"`), or an LLM judge on an
    OpenAI-compatible (or Gemini) endpoint (`judge="openai:MODEL"`, `judge_base_urls=[...]`,
    `judge_api_key_env=...`, and any other TeacherOptions field in `judge_options`, e.g. `rpm`,
    `max_retries`), passed as `reward.custom_reward_function.reward_kwargs`.

**A judge failure never scores 0: it is retried, and if it persists the sample is reported and left out of its
group.** The LLM judge's own client already retries each request (back-off, circuit breaker) and re-asks on an
unparsable reply; a verdict that is still "unjudged" is asked for again here, up to `judge_attempts` times
with exponential back-off (judge failures are mostly outages of one service, 429/5xx/timeouts, which waiting
fixes, and every sample left out would bias its group towards answers that are easy to judge). After that,
`compute_score` raises `JudgeFailed` naming the item. verl 0.9.1's v1 trainer treats a raise in the reward as
a failed rollout session: it logs the exception, stores no trajectory for that sample, and its group trains
on the samples that finished, so the failed one is in no reward, advantage or group statistic (a group with
none left is refilled with `trainer.v1.sampler.sync_refill_failed_groups`; validation counts its `acc` as 0
and also reports `acc_success_only`). A reward function cannot leave a
sample out any other way: verl's registered estimator sees only rewards, masks and group ids, so a sentinel
reward (NaN) would be needed, and it would poison the reward metrics too. The release drops the whole group
instead (minio3_official.md §6), which verl's sampler does only for groups with no trajectory left. A batch
whose size a failed session makes indivisible is padded with all-masked rows under a group id of their own
(`pad…`), which carry no weight; the paper's weights of the partial group are kept by the estimator
(train/rl/objective.py, "Partial groups").

Every key of the returned dict is numeric and present for every sample, as verl builds its metric arrays from
the first sample's keys; validation reports each per data source (`val-core/<source>/acc/mean@N`,
`val-aux/<source>/overturn/mean@N`, `.../turns/...`, `.../zooms/...`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from minio3_data.judge import Judge, make_judge
from minio3_data.records import Verdict
from minio3_data.teacher_options import TeacherOptions

DEFAULT_JUDGE_ATTEMPTS = 4
DEFAULT_JUDGE_BACKOFF = 2.0  # seconds before the second attempt, doubled after each
LOOP_FIELDS = ("overturn", "answer", "assistant_turns", "zooms")  # what the minio3_zoom loop records

_judges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Judge]] = weakref.WeakKeyDictionary()


class JudgeFailed(RuntimeError):
    """The judge could not score an answer within its retries (the sample must not be scored 0)."""


def _judge(spec: str, base_urls: list[str] | str | None, api_key_env: str | None, timeout: float,
           options: Mapping[str, Any] | None) -> Judge:  # fmt: skip
    """One judge per event loop and settings (its HTTP client belongs to the loop that made it)."""
    urls = [base_urls] if isinstance(base_urls, str) else list(base_urls or [])
    extra = dict(options or {})
    key = (spec, tuple(urls), api_key_env, timeout, tuple(sorted(extra.items())))
    judges = _judges.setdefault(asyncio.get_running_loop(), {})
    if key not in judges:
        teacher = replace(TeacherOptions(base_urls=urls, api_key_env=api_key_env, timeout=timeout), **extra)
        judges[key] = make_judge(spec, teacher if spec != "rule" else None)
    return judges[key]


async def close_judges() -> None:
    """Close the running event loop's judges (their HTTP clients); a reward worker's live as long as it does."""
    for judge in _judges.pop(asyncio.get_running_loop(), {}).values():
        await judge.aclose()


async def judge_with_retries(
    judge: Judge, question: str, answer: str, ground_truth: str, options: list[str], *, attempts: int,
    backoff: float, item: str,
) -> Verdict:  # fmt: skip
    """A correct/wrong verdict, asking again (with back-off) while the judge cannot decide; JudgeFailed after
    `attempts` unjudged verdicts."""
    verdict = Verdict("unjudged", "not asked")
    for attempt in range(max(1, attempts)):
        if attempt:
            await asyncio.sleep(backoff * 2 ** (attempt - 1))
        verdict = await judge.judge(question, answer, ground_truth, options)
        if verdict.label != "unjudged":
            return verdict
    raise JudgeFailed(f"item {item}: judge {judge.name} could not score the answer in {attempts} tries ({verdict.how})")


async def compute_score(
    data_source: str,
    solution_str: str,
    ground_truth: str,
    extra_info: dict[str, Any] | None = None,
    *,
    judge: str = "rule",
    judge_base_urls: list[str] | str | None = None,
    judge_api_key_env: str | None = None,
    judge_timeout: float = 120.0,
    judge_options: Mapping[str, Any] | None = None,
    judge_attempts: int = DEFAULT_JUDGE_ATTEMPTS,
    judge_backoff: float = DEFAULT_JUDGE_BACKOFF,
    **_: Any,
) -> dict[str, float]:
    """verl's reward-function signature; `solution_str` is unused (see the module docstring)."""
    info = extra_info or {}
    missing = [name for name in LOOP_FIELDS if name not in info]
    if missing:
        raise ValueError(f"the minio3 reward needs the minio3_zoom agent loop's fields; missing {', '.join(missing)}")
    overturn = bool(info["overturn"])
    answer = None if overturn else info["answer"]
    acc = 0.0
    if answer is not None:
        verdict = await judge_with_retries(
            _judge(judge, judge_base_urls, judge_api_key_env, judge_timeout, judge_options),
            str(info.get("question", "")), answer, str(ground_truth), list(info.get("options") or []),
            attempts=judge_attempts, backoff=judge_backoff, item=str(info.get("item_id", info.get("index", "?"))),
        )  # fmt: skip
        acc = 1.0 if verdict.correct else 0.0
    return {
        "score": acc,
        "acc": acc,
        "overturn": float(overturn),
        "answered": float(answer is not None),
        "turns": float(info["assistant_turns"]),
        "zooms": float(info["zooms"]),
    }
