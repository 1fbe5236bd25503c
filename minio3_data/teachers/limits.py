"""Client-side rate limits: RPM/TPM token buckets (the spending cap is spending.py's).

Buckets keep a run under the provider's quotas instead of provoking 429s; TPM is charged with an
estimate before a request and corrected with the real usage after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from ..families import DEFAULT, ModelFamily
from ..tokens import image_tokens, message_tokens
from .base import Message

UNKNOWN_IMAGE_TOKENS = 1000  # estimate for an image whose size the caller did not record


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
