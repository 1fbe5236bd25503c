"""Teachers: build the one a run asked for (`make_teacher`), wrapped in the run's safeguards.

The API key is read from the environment variable the user names, held only inside the SDK client,
and never written to a file, a log line or an error message.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from ..errors import BadInputError
from .base import GenerationConfig, ImageRef, Message, Reply, Teacher
from .guarded import Endpoint, GuardedTeacher
from .limits import Budget, BudgetExhausted, RateLimiter
from .pricing import price_for
from .resilience import BreakerPolicy, RetryPolicy, TeacherError, TeacherUnavailable, log

NO_KEY = "NONE"  # --api-key-env NONE: a local server that wants no key (sent as "EMPTY")
DEFAULT_KEY_ENVS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
}

__all__ = [
    "BreakerPolicy", "Budget", "BudgetExhausted", "GenerationConfig", "GuardedTeacher", "ImageRef", "Message",
    "Reply", "RetryPolicy", "Teacher", "TeacherError", "TeacherUnavailable", "api_key_from_env", "make_teacher",
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
    *,
    model: str | None,
    base_urls: Sequence[str] = (),
    api_key_env: str | None = None,
    timeout: float = 120.0,
    rpm: int | None = None,
    tpm: int | None = None,
    max_retries: int = 5,
    thinking_budget: int | None = None,
    api_version: str | None = None,
    price_input: float | None = None,
    price_output: float | None = None,
    max_cost: float | None = None,
    max_requests: int | None = None,
    budget: Budget | None = None,
    backoff_base: float = 1.0,
    backoff_max: float = 60.0,
    breaker: BreakerPolicy | None = None,
    notify: Callable[[str], None] = log.warning,
    image_dir: Path | None = None,
) -> GuardedTeacher:
    """An API teacher ('openai' or 'gemini'): one client per base URL, round robin, behind rate limits,
    a circuit breaker per URL and retries. Spending is capped by `budget`, or else by a new Budget of
    `max_cost` USD / `max_requests`; pass `teacher.budget` to the judge so both count against one cap."""
    if kind not in DEFAULT_KEY_ENVS:
        raise BadInputError(f"unknown teacher {kind!r}; choose one of {', '.join(DEFAULT_KEY_ENVS)}")
    if not model:
        raise BadInputError(f"--teacher {kind} needs --model (the model name the endpoint serves)")
    if timeout <= 0 or max_retries < 0:
        raise BadInputError("--timeout must be > 0 and --max-retries >= 0")
    if thinking_budget is not None and kind != "gemini":
        raise BadInputError("--thinking-budget applies to --teacher gemini only")
    if image_dir is not None and kind != "openai":
        raise BadInputError("--image-transport file applies to --teacher openai (an OpenAI-compatible server) only")
    urls = _check_base_urls(base_urls)
    key = api_key_from_env(kind, api_key_env)
    endpoints: list[Endpoint]
    if kind == "openai":
        from .openai_compat import OpenAITeacher

        endpoints = [OpenAITeacher(model, api_key=key, base_url=u, timeout=timeout, image_dir=image_dir) for u in urls]
    else:
        from .gemini import GeminiTeacher

        endpoints = [
            GeminiTeacher(model, api_key=key, base_url=u, timeout=timeout, api_version=api_version,
                          thinking_budget=thinking_budget)
            for u in urls
        ]
    return GuardedTeacher(
        endpoints,
        retry=RetryPolicy(max_retries=max_retries, base_delay=backoff_base, max_delay=backoff_max),
        limiter=RateLimiter(rpm, tpm),
        budget=budget or Budget(max_cost, max_requests),
        price=price_for(model, price_input, price_output),
        breaker=breaker,
        notify=notify,
    )
