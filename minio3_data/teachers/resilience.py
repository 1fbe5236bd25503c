"""Retries with back-off and a per-endpoint circuit breaker.

A synthesis run sends thousands of requests; transient failures (429, 5xx, timeouts, dropped
connections) must be retried politely, but an endpoint that keeps failing must pause the run and, if
it does not recover, stop it cleanly instead of marking every remaining item as failed.
Backends translate their SDK's exceptions into `RequestError` so this module knows no SDK.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

from ..errors import Minio3Error
from ..teacher_options import DEFAULT_MAX_RETRIES, BreakerPolicy

log = logging.getLogger("minio3.teachers")

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429})  # plus every 5xx
FATAL_STATUS = frozenset({401, 403, 404})  # bad key, no access, unknown model: no item can succeed
# answers that say "busy" or "not ready yet" rather than "this request is wrong": never a misconfiguration
TRANSIENT_STATUS = frozenset({408, 429, 502, 503, 504})
LONG_WAIT = 10.0  # seconds: a wait before a retry longer than this is announced, not silent
_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk)-[\w*.-]{6,}|\bAIza[\w-]{10,}|(?i:bearer)\s+\S+")


class TeacherFailure(Minio3Error):
    """A `generate` that ended without a reply. `requests` is how many requests it had sent (and
    possibly paid for) by then, so an attempt that fails still counts them."""

    requests: int = 0


class TeacherError(TeacherFailure):
    """One request failed for good (not retryable, or out of retries): that attempt fails, the run goes on."""


class TeacherUnavailable(TeacherFailure):
    """The teacher cannot serve any request (endpoints keep failing, or reject the key/model): stop the run."""


class RequestError(Exception):
    """One failed request, translated from the SDK's exception. Holds no request data, so never the key.
    `refused`: nothing listens at the endpoint (the connection was refused)."""

    def __init__(
        self, endpoint: str, reason: str, *, status: int | None = None, retry_after: float | None = None,
        refused: bool = False,
    ):
        super().__init__(f"{endpoint}: {reason}")
        self.endpoint = endpoint
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
        self.refused = refused

    @classmethod
    def connection(cls, endpoint: str, error: BaseException) -> RequestError:
        """From a transport error: "connection refused" when nothing listens, else "connection failed"."""
        refused = connection_refused(error)
        return cls(endpoint, "connection refused" if refused else "connection failed", refused=refused)

    @classmethod
    def from_status(
        cls, endpoint: str, status: int, headers: Mapping[str, str], message: str, secret: str = ""
    ) -> RequestError:
        """From an HTTP error; the server's message is kept short and scrubbed of anything key-like."""
        detail = redact(" ".join(message.split()), secret)[:200]
        return cls(endpoint, f"HTTP {status}" + (f" ({detail})" if detail else ""), status=status,
                   retry_after=retry_after_seconds(headers))

    @property
    def retryable(self) -> bool:
        """Timeouts and connection errors (no status), 408/409/429 and 5xx."""
        return self.status is None or self.status in RETRYABLE_STATUS or self.status >= 500

    @property
    def fatal(self) -> bool:
        return self.status in FATAL_STATUS

    @property
    def refusal(self) -> bool:
        """The server answered and said no for a reason other than load: repeated before any success,
        it is a misconfiguration (wrong model name, a parameter it rejects), not an outage."""
        return self.status is not None and self.status not in TRANSIENT_STATUS


def connection_refused(error: BaseException) -> bool:
    """Does `error`, or an error it was raised from, say the connection was refused? SDKs wrap the OS error in
    their own (aiohttp even maps it to a connect *timeout*), so the chain is searched."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == errno.ECONNREFUSED:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def server_message(body: Any) -> str:
    """The human message in an error body, whatever its shape: OpenAI's {"error": {"message"}},
    FastAPI's {"detail": "..."} or {"detail": [{"loc", "msg"}, ...]}, {"message"}, or plain text."""
    if isinstance(body, str):
        return body
    if not isinstance(body, dict):
        return ""
    err = body.get("error")
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        return err["message"]
    for key in ("message", "error", "detail"):
        if isinstance(body.get(key), str):
            return body[key]
    detail = body.get("detail")
    if isinstance(detail, list):  # FastAPI's validation errors
        return "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg', '')}" if isinstance(d, dict) else str(d)
            for d in detail
        )
    return ""


def redact(text: str, secret: str = "") -> str:
    """Remove `secret` and anything shaped like an API key (servers echo keys, sometimes masked)."""
    if len(secret) >= 8:
        text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, or `retry-after` as seconds or an HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with full jitter, at most `max_delay` seconds; a server's Retry-After is a lower bound
    on the wait, and one beyond `max_delay` is not waited for (see `call_with_retries`)."""

    max_retries: int = DEFAULT_MAX_RETRIES
    base_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        backoff = rng.uniform(0.0, min(self.max_delay, self.base_delay * 2**retry))
        return max(backoff, retry_after or 0.0)


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    notify: Callable[[str], None] = log.warning,
) -> T:
    """Run `attempt` until it succeeds, retrying retryable `RequestError`s.

    Raises TeacherError when a request is refused, retries run out or the server asks for a wait longer than
    `policy.max_delay` (--backoff-max), TeacherUnavailable when the endpoint rejects the key or the model
    (401/403/404). A wait over LONG_WAIT seconds is announced through `notify`. Other exceptions pass
    through untouched.
    """
    rng = rng or random.Random()
    for retry in range(policy.max_retries + 1):
        try:
            return await attempt()
        except RequestError as e:
            if e.fatal:
                raise TeacherUnavailable(f"{e}; check the base URL, the model and the API key variable") from None
            if not e.retryable:
                raise TeacherError(str(e)) from None
            if retry == policy.max_retries:
                tries = retry + 1
                raise TeacherError(f"{e} (gave up after {tries} {'try' if tries == 1 else 'tries'})") from None
            if e.retry_after is not None and e.retry_after > policy.max_delay:
                raise TeacherError(
                    f"{e}: the server asks to wait {e.retry_after:g} s, longer than --backoff-max "
                    f"{policy.max_delay:g} s; not waiting"
                ) from None
            wait = policy.delay(retry, e.retry_after, rng)
            if wait > LONG_WAIT:
                notify(f"{e}; waiting {wait:.0f} s before retry {retry + 1}/{policy.max_retries}")
            else:
                log.info("%s; retry %d/%d in %.2f s", e, retry + 1, policy.max_retries, wait)
            await sleep(wait)
    raise AssertionError("unreachable")  # the loop always returns or raises


class CircuitBreaker:
    """Per-endpoint breaker: after `threshold` consecutive failures it opens for `cooldown` seconds.

    After a pause it is half-open: one probe request goes through while the others wait; a failure
    reopens it at once, a success closes it and forgets the pauses. The failure that would start pause
    `max_pauses + 1` marks the endpoint dead instead.
    `notify` receives the one-line notices the run shows ("endpoint X failing: pausing N s").
    """

    def __init__(
        self,
        endpoint: str,
        policy: BreakerPolicy,
        *,
        notify: Callable[[str], None] = log.warning,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.endpoint = endpoint
        self.threshold = max(1, policy.threshold)
        self.cooldown = policy.cooldown
        self.max_pauses = policy.max_pauses
        self.notify = notify
        self.clock = clock
        self.failures = 0
        self.pauses = 0
        self.open_until = 0.0
        self.dead_reason: str | None = None
        self._probing = False

    @property
    def dead(self) -> bool:
        return self.dead_reason is not None

    def wait_time(self) -> float:
        """Seconds until the pause ends (0 when closed or half-open)."""
        return max(0.0, self.open_until - self.clock())

    def try_acquire(self) -> bool:
        """May a request go now? Always when closed; when half-open, only one probe at a time."""
        if self.dead or self.wait_time() > 0:
            return False
        if self.pauses == 0:
            return True
        if self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        self.failures = 0
        self.pauses = 0
        self._probing = False

    def record_other(self) -> None:
        """A request ended in a way that says nothing about the endpoint's health (e.g. a 400)."""
        self._probing = False

    def record_failure(self, error: RequestError) -> None:
        self._probing = False
        if self.dead or self.wait_time() > 0:
            return  # requests already in flight when it opened say nothing new
        self.failures += 1
        if self.failures < self.threshold:
            return
        if self.pauses >= self.max_pauses:
            self.dead_reason = (
                f"endpoint {self.endpoint} kept failing after {self.pauses} pause(s) (last: {error.reason})"
            )
            self.notify(self.dead_reason)
            return
        self.pauses += 1
        self.failures = self.threshold - 1
        self.open_until = self.clock() + self.cooldown
        self.notify(
            f"endpoint {self.endpoint} failing ({error.reason}): pausing {self.cooldown:g} s "
            f"(pause {self.pauses} of {self.max_pauses})"
        )
