"""Hard bounds on one request, whatever the server does: a deadline for the whole of it and a cap on its reply.

A server's timing and bytes are input like any other: a body that drips a byte at a time never trips a read
timeout, and a reply of hundreds of megabytes would be read, parsed and logged whole. So `bounded` gives each
request one deadline (connect, send, every byte of the reply) and a byte cap derived from its max_tokens,
which `cap_replies` (an httpx2 response hook, installed on each backend's client) enforces while the body is
read: reading stops once the cap is passed, and the request fails naming the cap.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import httpx2

from .resilience import RequestError

REPLY_SLACK = 64 * 1024  # bytes of a reply beyond its text: JSON framing, usage, ids, thought signatures
BYTES_PER_TOKEN = 64  # a token is a few characters; 64 bytes covers JSON escapes of any script with room


def reply_cap(max_tokens: int) -> int:
    """The most bytes a reply to a request of `max_tokens` may have: generous, but far below a runaway."""
    return REPLY_SLACK + BYTES_PER_TOKEN * max_tokens


@dataclass(frozen=True)
class _Cap:
    endpoint: str
    max_tokens: int

    @property
    def size(self) -> int:
        return reply_cap(self.max_tokens)


# the cap of the request the current task is making (set by `bounded`, read by the response hook)
_CAP: ContextVar[_Cap | None] = ContextVar("minio3_reply_cap", default=None)


class _CappedStream(httpx2.AsyncByteStream):
    """A response body that raises RequestError as soon as more than the cap has arrived."""

    def __init__(self, inner: httpx2.AsyncByteStream, cap: _Cap, status: int):
        self.inner, self.cap, self.status = inner, cap, status

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.inner:
            seen += len(chunk)
            if seen > self.cap.size:
                raise RequestError(
                    self.cap.endpoint,
                    f"reply over {self.cap.size:,} bytes for max_tokens {self.cap.max_tokens}: not read further",
                    status=self.status,
                )
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


async def cap_replies(response: httpx2.Response) -> None:
    """httpx2 response hook: bound the body of a response to a request made under `bounded`."""
    cap = _CAP.get()
    if cap is not None and isinstance(response.stream, httpx2.AsyncByteStream):
        response.stream = _CappedStream(response.stream, cap, response.status_code)


@asynccontextmanager
async def bounded(endpoint: str, seconds: float, max_tokens: int) -> AsyncIterator[None]:
    """One request's bounds: done within `seconds` or failed as "no reply within", its reply capped."""
    token = _CAP.set(_Cap(endpoint, max_tokens))
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise RequestError(endpoint, f"no reply within {seconds:g} s") from None
    finally:
        _CAP.reset(token)
