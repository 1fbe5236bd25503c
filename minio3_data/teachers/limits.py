"""Client-side limits: RPM/TPM token buckets and the spending budget (--max-cost, --max-requests).

Buckets keep a run under the provider's quotas instead of provoking 429s; TPM is charged with an
estimate before a request and corrected with the real usage after it. The budget refuses a request
before it is sent if it could push spending past a cap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ..families import DEFAULT, ModelFamily
from ..tokens import image_tokens, message_tokens
from .base import Message
from .resilience import TeacherFailure

UNKNOWN_IMAGE_TOKENS = 1000  # estimate for an image whose size the caller did not record


class BudgetExhausted(TeacherFailure):
    """A --max-cost or --max-requests cap is reached: the run stops cleanly, finished work kept."""


def estimate_prompt_tokens(messages: list[Message], family: ModelFamily = DEFAULT) -> int:
    """A prompt's size for a model of `family`, by the estimate export checks rows with (minio3_data.tokens)."""
    total = 0
    for m in messages:
        total += message_tokens(m.text)
        for im in m.images:
            total += image_tokens(im.width, im.height, family) if im.width and im.height else UNKNOWN_IMAGE_TOKENS
    return total


class TokenBucket:
    """`per_minute` units that refill continuously; `take` waits (first come, first served) until enough are left."""

    def __init__(
        self,
        per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self.sleep = sleep
        self._stamp = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self, amount: float) -> None:
        amount = min(float(amount), self.capacity)  # a request larger than a minute's quota still goes, alone
        async with self._lock:
            self._refill()
            while self.level < amount:
                await self.sleep((amount - self.level) / self.rate)
                self._refill()
            self.level -= amount

    def adjust(self, delta: float) -> None:
        """Give back (delta > 0) or charge (delta < 0) units after the fact; the level may go negative."""
        self._refill()
        self.level = min(self.capacity, self.level + delta)


class RateLimiter:
    """Requests per minute and tokens per minute for one teacher; either limit may be off (None)."""

    def __init__(self, rpm: int | None = None, tpm: int | None = None):
        self.rpm = TokenBucket(rpm) if rpm else None
        self.tpm = TokenBucket(tpm) if tpm else None

    async def acquire(self, estimated_tokens: int) -> None:
        if self.rpm:
            await self.rpm.take(1)
        if self.tpm:
            await self.tpm.take(estimated_tokens)

    def correct(self, estimated_tokens: int, actual_tokens: int) -> None:
        if self.tpm:
            self.tpm.adjust(estimated_tokens - actual_tokens)


class Budget:
    """Caps on money and requests, shared by everything that calls a paid endpoint (teacher and judge).

    `reserve` counts the request and holds its worst-case cost while it is in flight, so concurrent
    requests cannot overshoot together; when the cap is near it waits for requests in flight to settle,
    and raises BudgetExhausted only when even then the next request would not fit.
    """

    def __init__(self, max_cost_usd: float | None = None, max_requests: int | None = None):
        self.max_cost_usd = max_cost_usd
        self.max_requests = max_requests
        self.requests = 0
        self.spent_usd = 0.0
        self._reserved_usd = 0.0
        self._in_flight = 0
        self._changed = asyncio.Event()

    async def reserve(self, estimated_usd: float) -> None:
        while True:
            if self.max_requests is not None and self.requests >= self.max_requests:
                raise BudgetExhausted(f"--max-requests {self.max_requests} reached; stopping the run")
            if self.max_cost_usd is None or self.spent_usd + self._reserved_usd + estimated_usd <= self.max_cost_usd:
                break
            if not self._in_flight:
                raise BudgetExhausted(
                    f"--max-cost {self.max_cost_usd:g} USD reached (spent {self.spent_usd:.4f} USD; the next "
                    f"request may cost up to {estimated_usd:.4f} USD); stopping the run"
                )
            await self._changed.wait()
        self.requests += 1
        self._reserved_usd += estimated_usd
        self._in_flight += 1

    def settle(self, estimated_usd: float, actual_usd: float) -> None:
        """Replace a request's reservation by what it really cost, and wake requests waiting for room."""
        self._reserved_usd = max(0.0, self._reserved_usd - estimated_usd)
        self.spent_usd += actual_usd
        self._in_flight -= 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
