"""The options of an API teacher (or an LLM judge), defined once: the CLI, `SynthConfig` and
`make_teacher` all read their names and defaults from `TeacherOptions`.

Outside the `teachers` package, which pulls in pyarrow and the SDKs, so the CLI reads these defaults
without paying for those imports."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MAX_RETRIES = 6  # retries per request: the one default for teachers, judges and the CLI

STOP_AT = ("server", "client")  # where the protocol's stop strings apply (see `TeacherOptions.stop_at`)


@dataclass(frozen=True)
class BreakerPolicy:
    """When an endpoint counts as failing (`threshold` failures in a row), how long it pauses, how often."""

    threshold: int = 5
    cooldown: float = 30.0
    max_pauses: int = 3


@dataclass
class TeacherOptions:
    """How to reach a model and how politely: endpoint, key variable, limits, retries, prices.

    `stop_at`: "server" sends the protocol's stop strings with each request (the server ends the turn at
    its first closing tag: fewer tokens); "client" sends none and cuts the turn at its first action on our
    side, for servers that reject `stop` (some fail on it for vision models)."""

    model: str | None = None
    base_urls: list[str] = field(default_factory=list)
    api_key_env: str | None = None
    timeout: float = 120.0
    rpm: int | None = None
    tpm: int | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_base: float = 1.0  # seconds before the first retry (tests shorten it)
    backoff_max: float = 60.0
    breaker: BreakerPolicy | None = None  # when an endpoint counts as failing and how long the run pauses
    thinking_budget: int | None = None  # Gemini only
    api_version: str | None = None  # Gemini only
    price_input: float | None = None  # USD per 1M input tokens (overrides the built-in table)
    price_output: float | None = None  # USD per 1M output tokens
    max_cost: float | None = None  # USD cap on the run's spending
    max_requests: int | None = None
    stop_at: str = "server"

