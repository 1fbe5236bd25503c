"""The teacher a run actually calls: several endpoints of one backend behind the run's safeguards.

One `generate` = retries around attempts; each attempt picks the next healthy endpoint (round robin,
skipping endpoints whose circuit breaker is open), waits for the RPM/TPM buckets, reserves budget,
sends one request and prices its usage. Every request sent is counted in `Reply.usage.requests`, or
in the `requests` of the TeacherFailure raised instead.

Misconfiguration is not an outage: while no request has succeeded yet, a refused connection (nothing
listens there) stops the run at once, and so do STARTUP_REFUSALS answers in a row that refuse the request
(a 400/422 for a wrong model or a rejected parameter, a deterministic 500), with the server's own message,
instead of being retried item after item. From then on every call fails at once with that message, so the
attempts still in flight end within moments instead of waiting out pauses for a server that is not there.

A reply whose usage is junk is kept (its text is what was paid for) with its usage unknown: counted as no
tokens and no cost, announced once, and charged to the budget at its worst case so that --max-cost holds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from ..records import ProbeItem, Usage
from ..teacher_options import BreakerPolicy
from .base import GenerationConfig, ImageRef, Message, Reply, Speaker
from .limits import RateLimiter, estimate_prompt_tokens
from .pricing import Price
from .resilience import (
    CircuitBreaker,
    RequestError,
    RetryPolicy,
    TeacherFailure,
    TeacherUnavailable,
    call_with_retries,
    log,
)
from .spending import SpendingCap
from .usage import USAGE_UNKNOWN

PROBE_POLL = 0.05  # seconds between looks while a half-open endpoint's probe request is in flight
STARTUP_REFUSALS = 3  # refusals in a row, before any success, that stop the run as a misconfiguration
FIRST_REQUEST_HINT = (
    "no request has succeeded: check --model and --base-url; if the server fails on stop strings "
    "(some do for vision models), pass --stop-at client"
)


class Endpoint(Speaker, Protocol):
    """A backend bound to one base URL: one request per `generate`, failures raised as RequestError."""

    endpoint: str  # shown in notices and errors; never holds the key

    def prepare_image(self, ref: ImageRef) -> None: ...

    async def aclose(self) -> None: ...


class GuardedTeacher:
    def __init__(
        self,
        endpoints: list[Endpoint],
        *,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        budget: SpendingCap | None = None,
        price: Price | None = None,
        breaker: BreakerPolicy | None = None,
        notify: Callable[[str], None] = log.warning,
        rng: random.Random | None = None,
        share_with: GuardedTeacher | None = None,
        stop_at: str = "server",
    ):
        """`share_with`: the run's teacher, for a judge: its budget is always shared, and on the same base URLs
        its rate limiter and circuit breakers too, so both count against one server's limits."""
        if not endpoints:
            raise ValueError("a teacher needs at least one endpoint")
        self.name = endpoints[0].name
        self.endpoints = endpoints
        self.retry = retry or RetryPolicy()
        self.price = price or Price()
        self.budget = share_with.budget if share_with is not None else budget or SpendingCap()
        if share_with is not None and [e.endpoint for e in share_with.endpoints] == [e.endpoint for e in endpoints]:
            self.limiter, self.breakers = share_with.limiter, share_with.breakers
        else:
            self.limiter = limiter or RateLimiter()
            self.breakers = [CircuitBreaker(e.endpoint, breaker or BreakerPolicy(), notify=notify) for e in endpoints]
        self.usage = Usage()  # everything this teacher consumed, for the run's stats
        self.notify = notify
        self._junk_usage_told = False
        self._rng = rng or random.Random()
        self._next = 0
        self.stop_at = stop_at  # "client": stop strings are applied here, never sent (see TeacherOptions)
        self._served = False  # has any request succeeded?
        self._refusals = 0  # refusals in a row before the first success
        self._unavailable: str | None = None  # why no request can succeed, found before any did

    def bind(self, item: ProbeItem, seed: int) -> GuardedTeacher:
        """An API teacher speaks the same way in every attempt."""
        return self

    def __repr__(self) -> str:
        return f"GuardedTeacher({self.name!r}, endpoints={[e.endpoint for e in self.endpoints]})"

    def prepare_image(self, ref: ImageRef) -> None:
        """Let the endpoints build an image's wire form in the caller's (worker) thread; they share one
        transport, so the first one speaks for all."""
        self.endpoints[0].prepare_image(ref)

    async def _pick(self) -> tuple[Endpoint, CircuitBreaker]:
        """The next endpoint in round-robin order whose breaker lets a request through; waits while none does."""
        n = len(self.endpoints)
        while True:
            if self._unavailable is not None:
                raise TeacherUnavailable(self._unavailable)
            order = [(self._next + k) % n for k in range(n)]
            live = [i for i in order if not self.breakers[i].dead]
            if not live:
                reasons = "; ".join(b.dead_reason or "" for b in self.breakers)
                raise TeacherUnavailable(f"{reasons}; stopping the run (finished work is kept)")
            for i in live:
                if self.breakers[i].try_acquire():
                    self._next = i + 1
                    return self.endpoints[i], self.breakers[i]
            await asyncio.sleep(min(self.breakers[i].wait_time() or PROBE_POLL for i in live))

    async def generate(self, messages: list[Message], config: GenerationConfig) -> Reply:
        if self.stop_at == "client" and config.stop:
            reply = await self._generate(messages, replace(config, stop=[]))
            reply.text = cut_after_stop(reply.text, config.stop)
            return reply
        return await self._generate(messages, config)

    async def _generate(self, messages: list[Message], config: GenerationConfig) -> Reply:
        prompt_estimate = estimate_prompt_tokens(messages)
        token_estimate = prompt_estimate + config.max_tokens
        cost_estimate = self.price.cost(Usage(prompt_tokens=prompt_estimate, completion_tokens=config.max_tokens))
        sent = 0

        async def attempt() -> Reply:
            nonlocal sent
            endpoint, breaker = await self._pick()
            try:
                await self.limiter.acquire(token_estimate)
                await self.budget.reserve(cost_estimate)
            except BaseException:
                breaker.record_other()  # hand back a half-open probe that was never sent
                raise
            sent += 1
            try:
                reply = await endpoint.generate(messages, config)
            except BaseException as e:
                self.budget.settle(cost_estimate, 0.0)
                self.limiter.correct(token_estimate, 0)
                if isinstance(e, RequestError) and self._check_startup(e):
                    breaker.record_other()  # a misconfiguration says nothing about the endpoint's health
                    raise TeacherUnavailable(self._unavailable) from None
                if isinstance(e, RequestError) and e.retryable:
                    breaker.record_failure(e)
                else:
                    breaker.record_other()
                raise
            breaker.record_success()
            self._served = True
            reply.usage.cost_usd = self.price.cost(reply.usage)
            unknown = reply.extra.get(USAGE_UNKNOWN)
            if unknown:
                self._tell_junk_usage(endpoint.endpoint, unknown)
            self.budget.settle(cost_estimate, cost_estimate if unknown else reply.usage.cost_usd)
            self.limiter.correct(token_estimate, reply.usage.total_tokens)
            return reply

        try:
            reply = await call_with_retries(attempt, self.retry, rng=self._rng, notify=self.notify)
        except TeacherFailure as e:
            e.requests = sent
            raise
        finally:
            self.usage.requests += sent
        reply.usage.requests = sent
        self.usage.add(replace(reply.usage, requests=0))  # requests were counted above, failed ones included
        return reply

    def _check_startup(self, error: RequestError) -> bool:
        """Is the teacher unavailable: nothing listens, or the server has refused every request so far (see the
        module docstring)? Then `_unavailable` says why."""
        if self._served or error.fatal:
            return False
        if error.refused:
            self._unavailable = f"connection refused at {error.endpoint}; is the server running?"
        self._refusals = self._refusals + 1 if error.refusal else 0
        if self._refusals >= STARTUP_REFUSALS:
            self._unavailable = f"{error} on each of the first {self._refusals} requests; {FIRST_REQUEST_HINT}"
        return self._unavailable is not None

    def _tell_junk_usage(self, endpoint: str, why: str) -> None:
        if not self._junk_usage_told:
            self._junk_usage_told = True
            self.notify(
                f"{endpoint}: unreadable usage in a reply ({why}); the reply is kept, its tokens and cost count "
                "as unknown (0) and --max-cost charges it at its worst case (told once)"
            )

    async def aclose(self) -> None:
        await asyncio.gather(*(e.aclose() for e in self.endpoints))


def cut_after_stop(text: str, stop: list[str]) -> str:
    """The text up to and including its first stop string, as a server applying `stop` would have ended
    it (with the stop string kept, as `restore_stop` puts it back for a server that cut it)."""
    ends = [i + len(s) for s in stop if (i := text.find(s)) >= 0]
    return text[: min(ends)] if ends else text
