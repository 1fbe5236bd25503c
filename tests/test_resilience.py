"""Retries, Retry-After, timeouts, the circuit breaker, rate limits and budget caps, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import random
import time
from email.utils import formatdate

import pytest
from loopback_teacher import Fault, LoopbackTeacher, ask, fast_teacher, loopback_fixture  # noqa: F401 (`loopback`)

from minio3_data.teachers import (
    BreakerPolicy,
    BudgetExhausted,
    GenerationConfig,
    Message,
    RetryPolicy,
    SpendingCap,
    TeacherError,
    TeacherUnavailable,
)
from minio3_data.teachers.limits import TokenBucket
from minio3_data.teachers.resilience import (
    CircuitBreaker,
    RequestError,
    call_with_retries,
    retry_after_seconds,
)

CONFIG = GenerationConfig(stop=["</grounding>", "</answer>"], max_tokens=64)
QUESTION = [Message("user", ["What colour is the car?"])]
APIS = ["openai", "gemini"]


def _calls(teacher, n: int = 1, concurrent: bool = False):
    """n generate calls of the one question (sequential or concurrent), then close the teacher."""
    return ask(teacher, QUESTION, CONFIG, n, concurrent)


@pytest.mark.parametrize("api", APIS)
def test_429_waits_at_least_retry_after(loopback: LoopbackTeacher, api: str):
    loopback.inject(Fault.rate_limited(retry_after=0.4))
    start = time.monotonic()
    (reply,) = asyncio.run(_calls(fast_teacher(api, loopback, backoff_max=1.0)))
    assert time.monotonic() - start >= 0.4  # the back-off base is 1 ms: only the header explains the wait
    assert loopback.count == 2 and reply.usage.requests == 2


@pytest.mark.parametrize("api", APIS)
def test_5xx_is_retried(loopback: LoopbackTeacher, api: str):
    loopback.inject(Fault.server_error(500))
    loopback.inject(Fault.server_error(503))
    (reply,) = asyncio.run(_calls(fast_teacher(api, loopback)))
    assert "</grounding>" in reply.text
    assert loopback.count == 3 and reply.usage.requests == 3


@pytest.mark.parametrize("api", APIS)
def test_timeouts_are_retried_then_reported(loopback: LoopbackTeacher, api: str):
    loopback.inject(Fault.slow(1.0), times=3)
    teacher = fast_teacher(api, loopback, timeout=0.2, max_retries=2)
    with pytest.raises(TeacherError, match=r"no reply within 0.2 s \(gave up after 3 tries\)"):
        asyncio.run(_calls(teacher))
    assert loopback.count == 3
    assert teacher.usage.requests == 3  # failed requests are counted too


def test_timeout_then_success(loopback: LoopbackTeacher):
    loopback.inject(Fault.slow(1.0))
    (reply,) = asyncio.run(_calls(fast_teacher("openai", loopback, timeout=0.2)))
    assert reply.usage.requests == 2


@pytest.mark.parametrize("api", APIS)
def test_unreadable_body_is_retried(loopback: LoopbackTeacher, api: str):
    loopback.inject(Fault.broken_body())
    (reply,) = asyncio.run(_calls(fast_teacher(api, loopback)))
    assert loopback.count == 2 and reply.usage.requests == 2


@pytest.mark.parametrize("api", APIS)
def test_bad_request_fails_the_attempt_without_retry(loopback: LoopbackTeacher, api: str):
    loopback.inject(Fault.bad_request("too many images in one request"))
    with pytest.raises(TeacherError, match="HTTP 400 .*too many images"):
        asyncio.run(_calls(fast_teacher(api, loopback)))
    assert loopback.count == 1


@pytest.mark.parametrize("status", [401, 403, 404])
def test_bad_key_or_model_stops_the_run(loopback: LoopbackTeacher, status: int):
    loopback.inject(Fault.server_error(status))
    with pytest.raises(TeacherUnavailable, match=f"HTTP {status}"):
        asyncio.run(_calls(fast_teacher("openai", loopback)))
    assert loopback.count == 1


@pytest.mark.parametrize("api", APIS)
def test_breaker_pauses_then_stops_the_run(loopback: LoopbackTeacher, api: str):
    """Every request fails: one pause is announced, then TeacherUnavailable instead of endless retries."""
    loopback.inject_every(1, Fault.server_error(503))
    notices: list[str] = []
    teacher = fast_teacher(api, loopback, max_retries=50, notify=notices.append,
                           breaker=BreakerPolicy(threshold=2, cooldown=0.3, max_pauses=1))
    start = time.monotonic()
    with pytest.raises(TeacherUnavailable, match="kept failing after 1 pause"):
        asyncio.run(_calls(teacher, 4, concurrent=True))
    assert time.monotonic() - start >= 0.3
    assert len(notices) == 2
    assert "failing (HTTP 503" in notices[0] and "pausing 0.3 s (pause 1 of 1)" in notices[0]
    assert "kept failing" in notices[1]
    # 2 failures open it (a few more were in flight); one half-open probe fails and kills it:
    # a handful of requests, not the 4 x 51 the retry budget alone would allow
    assert 3 <= loopback.count <= 8


def test_breaker_routes_around_a_failing_endpoint():
    with LoopbackTeacher() as bad, LoopbackTeacher() as good:
        bad.inject_every(1, Fault.server_error(500))
        notices: list[str] = []
        teacher = fast_teacher("openai", bad, good, notify=notices.append,
                               breaker=BreakerPolicy(threshold=2, cooldown=60, max_pauses=3))
        replies = asyncio.run(_calls(teacher, 8))
        assert all("</grounding>" in r.text for r in replies)
        assert bad.count == 2 and good.count == 8  # paused after two failures; the rest went to `good`
        assert len(notices) == 1 and bad.url in notices[0]


def test_breaker_half_open_and_recovery():
    now = [0.0]
    notices: list[str] = []
    breaker = CircuitBreaker("http://x", BreakerPolicy(threshold=3, cooldown=10, max_pauses=2),
                             notify=notices.append, clock=lambda: now[0])
    err = RequestError("http://x", "HTTP 503", status=503)
    for _ in range(3):
        breaker.record_failure(err)
    assert breaker.wait_time() == 10 and breaker.pauses == 1
    breaker.record_failure(err)  # a straggler while open: ignored
    now[0] = 10.0
    assert breaker.wait_time() == 0
    breaker.record_failure(err)  # half-open: one failure reopens
    assert breaker.pauses == 2 and breaker.wait_time() == 10
    now[0] = 20.0
    breaker.record_success()
    assert breaker.pauses == 0 and breaker.failures == 0
    for _ in range(3 * 3):
        breaker.record_failure(err)
        now[0] += 10
    assert breaker.dead and len(notices) == 5 and "kept failing after 2 pause(s)" in notices[-1]


def test_retry_after_header_forms():
    assert retry_after_seconds({"retry-after-ms": "1500"}) == 1.5
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert 8 <= retry_after_seconds({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_backoff_is_capped_full_jitter_with_retry_after_floor():
    waits: list[float] = []
    failures = [RequestError("e", "HTTP 500", status=500)] * 5 + [
        RequestError("e", "HTTP 429", status=429, retry_after=7.0)
    ]

    async def attempt():
        if failures:
            raise failures.pop(0)
        return "ok"

    async def sleep(s: float) -> None:
        waits.append(s)

    policy = RetryPolicy(max_retries=6, base_delay=1.0, max_delay=8.0)
    assert asyncio.run(call_with_retries(attempt, policy, rng=random.Random(0), sleep=sleep)) == "ok"
    assert [w <= min(8.0, 2**k) for k, w in enumerate(waits[:5])] == [True] * 5
    assert len(set(waits)) == len(waits)  # jittered
    assert waits[5] == 7.0


def test_token_bucket_waits_for_refill_and_takes_corrections():
    now = [0.0]

    async def sleep(s: float) -> None:
        now[0] += s

    async def go():
        bucket = TokenBucket(600, clock=lambda: now[0], sleep=sleep)  # 10 per second
        await bucket.take(600)
        assert now[0] == 0.0  # a full minute's quota is available at once
        await bucket.take(5)
        assert now[0] == pytest.approx(0.5)
        bucket.adjust(-10)  # real usage was 10 more than estimated
        await bucket.take(1)
        assert now[0] == pytest.approx(1.6)
        await bucket.take(10_000)  # larger than capacity: waits for a full bucket, not forever
        assert bucket.level <= 0

    asyncio.run(go())


def test_rpm_limit_spaces_requests(loopback: LoopbackTeacher):
    teacher = fast_teacher("openai", loopback, rpm=600)  # 10/s after the initial minute's burst
    teacher.limiter.rpm.level = 0.0
    start = time.monotonic()
    asyncio.run(_calls(teacher, 3))
    assert time.monotonic() - start >= 0.25


def test_max_requests_stops_before_the_request(loopback: LoopbackTeacher):
    teacher = fast_teacher("openai", loopback, max_requests=2)
    with pytest.raises(BudgetExhausted, match="--max-requests 2"):
        asyncio.run(_calls(teacher, 3))
    assert loopback.count == 2


def test_max_cost_stops_before_overspending(loopback: LoopbackTeacher):
    # 1000 USD per 1M tokens: each request may cost up to ~0.07 USD (estimate incl. 64 output tokens)
    teacher = fast_teacher("openai", loopback, price_input=1000.0, price_output=1000.0, max_cost=0.2)
    with pytest.raises(BudgetExhausted, match="--max-cost 0.2 USD"):
        asyncio.run(_calls(teacher, 10))
    assert 1 <= loopback.count < 10
    assert teacher.budget.spent_usd <= 0.2


def test_budget_waits_for_requests_in_flight_before_refusing():
    async def go():
        budget = SpendingCap(max_cost_usd=1.0)
        await budget.reserve(0.6)
        second = asyncio.create_task(budget.reserve(0.3))
        third = asyncio.create_task(budget.reserve(0.6))
        await asyncio.sleep(0.01)
        assert budget.requests == 2 and not third.done()  # 0.6 + 0.3 fit, 0.6 more does not: wait
        budget.settle(0.6, 0.1)  # the first one cost less than feared
        await asyncio.wait_for(third, 1)
        assert second.done() and budget.requests == 3
        budget.settle(0.3, 0.3)
        budget.settle(0.6, 0.5)
        with pytest.raises(BudgetExhausted):  # 0.9 spent, nothing in flight, 0.2 does not fit
            await budget.reserve(0.2)

    asyncio.run(go())


def test_a_shared_budget_counts_teacher_and_judge(loopback: LoopbackTeacher):
    teacher = fast_teacher("openai", loopback, max_requests=3)
    judge_teacher = fast_teacher("openai", loopback, share_with=teacher)
    asyncio.run(_calls(teacher, 2))
    with pytest.raises(BudgetExhausted):
        asyncio.run(_calls(judge_teacher, 2))
    assert loopback.count == 3


def test_hundreds_of_concurrent_requests():
    with LoopbackTeacher(latency=0.05, record=False) as srv:
        start = time.monotonic()
        replies = asyncio.run(_calls(fast_teacher("openai", srv, timeout=5), 200, concurrent=True))
        elapsed = time.monotonic() - start
        assert len(replies) == 200 and srv.count == 200  # nothing dropped, nothing retried
        assert elapsed < 10
