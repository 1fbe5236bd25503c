"""The teacher a run actually calls: several endpoints of one backend behind the run's safeguards.

One `generate` = retries around attempts; each attempt picks the next healthy endpoint (round robin,
skipping endpoints whose circuit breaker is open), waits for the RPM/TPM buckets, reserves budget,
sends one request and prices its usage. Every request sent is counted in `Reply.usage.requests`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from ..records import Usage
from .base import GenerationConfig, ImageRef, Message, Reply, Teacher
from .limits import Budget, RateLimiter, estimate_prompt_tokens
from .pricing import Price
from .resilience import (
    BreakerPolicy,
    CircuitBreaker,
    RequestError,
    RetryPolicy,
    TeacherUnavailable,
    call_with_retries,
    log,
)

PROBE_POLL = 0.05  # seconds between looks while a half-open endpoint's probe request is in flight


class Endpoint(Teacher, Protocol):
    """A backend bound to one base URL: one request per `generate`, failures raised as RequestError."""

    endpoint: str  # shown in notices and errors; never holds the key


class GuardedTeacher:
    def __init__(
        self,
        endpoints: list[Endpoint],
        *,
        retry: RetryPolicy | None = None,
        limiter: RateLimiter | None = None,
        budget: Budget | None = None,
        price: Price | None = None,
        breaker: BreakerPolicy | None = None,
        notify: Callable[[str], None] = log.warning,
        rng: random.Random | None = None,
    ):
        if not endpoints:
            raise ValueError("a teacher needs at least one endpoint")
        self.name = endpoints[0].name
        self.endpoints = endpoints
        self.retry = retry or RetryPolicy()
        self.limiter = limiter or RateLimiter()
        self.budget = budget or Budget()
        self.price = price or Price()
        self.breakers = [CircuitBreaker(e.endpoint, breaker or BreakerPolicy(), notify=notify) for e in endpoints]
        self.usage = Usage()  # everything this teacher consumed, for the run's stats
        self._rng = rng or random.Random()
        self._next = 0

    def __repr__(self) -> str:
        return f"GuardedTeacher({self.name!r}, endpoints={[e.endpoint for e in self.endpoints]})"

    def prepare_image(self, ref: ImageRef) -> None:
        """Let the endpoints build an image's wire form in the caller's (worker) thread; they share one
        transport, so the first one speaks for all."""
        prepare = getattr(self.endpoints[0], "prepare_image", None)
        if prepare is not None:
            prepare(ref)

    async def _pick(self) -> tuple[Endpoint, CircuitBreaker]:
        """The next endpoint in round-robin order whose breaker lets a request through; waits while none does."""
        n = len(self.endpoints)
        while True:
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
                if isinstance(e, RequestError) and e.retryable:
                    breaker.record_failure(e)
                else:
                    breaker.record_other()
                raise
            breaker.record_success()
            reply.usage.cost_usd = self.price.cost(reply.usage)
            self.budget.settle(cost_estimate, reply.usage.cost_usd)
            self.limiter.correct(token_estimate, reply.usage.total_tokens)
            return reply

        try:
            reply = await call_with_retries(attempt, self.retry, rng=self._rng)
        finally:
            self.usage.requests += sent
        reply.usage.requests = sent
        self.usage.add(replace(reply.usage, requests=0))  # requests were counted above, failed ones included
        return reply

    async def aclose(self) -> None:
        await asyncio.gather(*(e.aclose() for e in self.endpoints))
