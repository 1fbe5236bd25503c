"""What a request cost, from its token usage.

The table holds public list prices (USD per 1M tokens, standard tier, short prompts) as of
PRICES_AS_OF; providers change them, so `--price-input/--price-output` override the table, and a
model the table does not know costs 0 with a one-time warning (a local vLLM server is free anyway).
Hidden reasoning ("thought") tokens are billed as output, as both providers do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..records import Usage

log = logging.getLogger("minio3.teachers")

PRICES_AS_OF = "2025-08"

# model name prefix -> (input, output) USD per 1M tokens; the longest matching prefix wins
PRICES_PER_1M: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gemini-2.5-pro": (1.25, 10.00),
    "gemini-2.5-flash": (0.30, 2.50),
    "gemini-2.5-flash-lite": (0.10, 0.40),
    "gemini-2.0-flash": (0.10, 0.40),
}

_warned: set[str] = set()


@dataclass(frozen=True)
class Price:
    input_per_1m: float = 0.0
    output_per_1m: float = 0.0

    def cost(self, usage: Usage) -> float:
        output = usage.completion_tokens + usage.thought_tokens
        return (usage.prompt_tokens * self.input_per_1m + output * self.output_per_1m) / 1e6


def table_price(model: str) -> tuple[float, float] | None:
    name = model.lower().rsplit("/", 1)[-1]  # "models/gemini-2.5-flash", "openai/gpt-4o"
    matches = [p for p in PRICES_PER_1M if name.startswith(p)]
    return PRICES_PER_1M[max(matches, key=len)] if matches else None


def price_for(
    model: str, price_input: float | None = None, price_output: float | None = None, *, local: bool = False
) -> Price:
    """The table's price for `model`, with either side overridden; unknown and not overridden -> 0, warned
    once per model, and not at all for a `local` server (free, and its model names are paths)."""
    known = table_price(model)
    if known is None and not local and (price_input is None or price_output is None) and model not in _warned:
        _warned.add(model)
        log.warning(
            "no price known for model %r: its cost counts as 0 (pass --price-input/--price-output USD per 1M "
            "tokens so that --max-cost works)", model
        )
    base_in, base_out = known or (0.0, 0.0)
    return Price(base_in if price_input is None else price_input, base_out if price_output is None else price_output)
