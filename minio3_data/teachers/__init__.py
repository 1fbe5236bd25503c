"""Teachers: build the one a run asked for (`make_teacher`), wrapped in the run's safeguards.

The API key is read from the environment variable the user names, held only inside the SDK client,
and never written to a file, a log line or an error message.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import BadInputError
from ..teacher_options import STOP_AT, BreakerPolicy, TeacherOptions
from .base import GenerationConfig, ImageRef, Message, Reply, Speaker, Teacher
from .guarded import Endpoint, GuardedTeacher
from .limits import RateLimiter
from .pricing import price_for
from .resilience import RetryPolicy, TeacherError, TeacherFailure, TeacherUnavailable, log
from .spending import BudgetExhausted, SpendingCap

NO_KEY = "NONE"  # --api-key-env NONE: a local server that wants no key (sent as "EMPTY")
DEFAULT_KEY_ENVS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}

__all__ = [
    "BreakerPolicy", "BudgetExhausted", "GenerationConfig", "GuardedTeacher", "ImageRef", "Message", "Reply",
    "RetryPolicy", "Speaker", "SpendingCap", "Teacher", "TeacherError", "TeacherFailure", "TeacherOptions",
    "TeacherUnavailable", "api_key_from_env", "make_teacher",
]  # fmt: skip


def api_key_from_env(kind: str, api_key_env: str | None) -> str:
    """The key from the named variable (or the backend's default ones); a missing key names the variable."""
    if api_key_env == NO_KEY:
        return "EMPTY"
    names = (api_key_env,) if api_key_env else DEFAULT_KEY_ENVS[kind]
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    raise BadInputError(
        f"environment variable {' or '.join(names)} is not set: export your {kind} API key there, name "
        f"another variable with --api-key-env, or pass --api-key-env {NO_KEY} for a server without a key"
    )


def _check_base_urls(base_urls: Sequence[str]) -> list[str | None]:
    for url in base_urls:
        if not url.startswith(("http://", "https://")):
            raise BadInputError(f"--base-url {url!r}: expected an http:// or https:// URL")
    return list(base_urls) or [None]


def make_teacher(
    kind: str,
    options: TeacherOptions | None = None,
    *,
    notify: Callable[[str], None] = log.warning,
    image_dir: Path | None = None,
    share_with: GuardedTeacher | None = None,
    **overrides: Any,
) -> GuardedTeacher:
    """An API teacher ('openai' or 'gemini'): one client per base URL, round robin, behind rate limits,
    a circuit breaker per URL and retries. `overrides` replace fields of `options` (TeacherOptions).

    Spending is capped by a new SpendingCap of `max_cost` USD / `max_requests`, or by the budget of
    `share_with`: the run's teacher, for a judge: the judge counts against its budget and, on the same
    base URLs, shares its rate limiter and circuit breakers."""
    o = replace(options or TeacherOptions(), **overrides)
    if kind not in DEFAULT_KEY_ENVS:
        raise BadInputError(f"unknown teacher {kind!r}; choose one of {', '.join(DEFAULT_KEY_ENVS)}")
    if not o.model:
        raise BadInputError(f"--teacher {kind} needs --model (the model name the endpoint serves)")
    if o.timeout <= 0 or o.max_retries < 0:
        raise BadInputError("--timeout must be > 0 and --max-retries >= 0")
    if o.thinking_budget is not None and kind != "gemini":
        raise BadInputError("--thinking-budget applies to --teacher gemini only")
    if image_dir is not None and kind != "openai":
        raise BadInputError("--image-transport file applies to --teacher openai (an OpenAI-compatible server) only")
    if o.stop_at not in STOP_AT:
        raise BadInputError(f"--stop-at {o.stop_at!r}: use {' or '.join(STOP_AT)}")
    urls = _check_base_urls(o.base_urls)
    key = api_key_from_env(kind, o.api_key_env)
    endpoints: list[Endpoint]
    if kind == "openai":
        from .openai_compat import OpenAITeacher

        endpoints = [OpenAITeacher(o.model, api_key=key, base_url=u, timeout=o.timeout, image_dir=image_dir)
                     for u in urls]
    else:
        from .gemini import GeminiTeacher

        endpoints = [
            GeminiTeacher(o.model, api_key=key, base_url=u, timeout=o.timeout, api_version=o.api_version,
                          thinking_budget=o.thinking_budget)
            for u in urls
        ]
    return GuardedTeacher(
        endpoints,
        retry=RetryPolicy(max_retries=o.max_retries, base_delay=o.backoff_base, max_delay=o.backoff_max),
        limiter=RateLimiter(o.rpm, o.tpm),
        budget=SpendingCap(o.max_cost, o.max_requests),
        price=price_for(o.model, o.price_input, o.price_output, local=_all_local(urls)),
        breaker=o.breaker,
        notify=notify,
        share_with=share_with,
        stop_at=o.stop_at,
    )


def _all_local(urls: list[str | None]) -> bool:
    """Every base URL is this machine or a private network (a local server: no price to know)."""
    return all(u is not None and _is_local(urlsplit(u).hostname or "") for u in urls)


def _is_local(host: str) -> bool:
    if host == "localhost" or host.endswith(".local"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local
