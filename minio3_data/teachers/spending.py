"""The spending cap of a run (--max-cost, --max-requests): a request is refused before it is sent if it could
push spending past a cap."""

from __future__ import annotations

import asyncio

from .resilience import TeacherFailure


class BudgetExhausted(TeacherFailure):
    """A --max-cost or --max-requests cap is reached: the run stops cleanly, finished work kept."""


class SpendingCap:
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
