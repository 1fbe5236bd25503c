"""The rules a row must pass so LLaMA-Factory trains on it exactly as written.

LLaMA-Factory silently skips rows whose roles do not alternate, aborts the whole run when `<image>`
placeholders and images disagree, and crashes when `cutoff_len` cuts through image tokens. Every row is
checked here first; a failing row is excluded and listed with the rule it broke (its reason), never written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from minio3_data.families import DEFAULT, ModelFamily

from .tokens import row_tokens

IMAGE = "<image>"
OTHER_PLACEHOLDERS = ("<video>", "<audio>")  # LLaMA-Factory counts these against (empty) video/audio lists
SPECIAL_TOKEN_RE = re.compile(r"<\|[a-z_]+\|>")  # Qwen special tokens typed as text break the image alignment
SYSTEM, HUMAN, GPT = "system", "human", "gpt"


@dataclass(frozen=True)
class Violation:
    """The rule a row broke: a short reason to count by, and the detail for excluded.jsonl."""

    reason: str
    detail: str


@dataclass(frozen=True)
class Limits:
    cutoff_len: int
    image_max_pixels: int
    image_min_pixels: int
    family: ModelFamily = DEFAULT  # whose processor counts the image tokens


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_structure(conversations: Any) -> Violation | None:
    """Shape and role order: [system], then human/gpt pairs, ending with gpt, no empty turns."""
    if not isinstance(conversations, list) or not conversations:
        return Violation("bad conversations", "conversations must be a non-empty list of {from, value} turns")
    for i, m in enumerate(conversations):
        if (
            not isinstance(m, dict)
            or not isinstance(m.get("from"), str)
            or not isinstance(m.get("value"), str)
        ):
            return Violation("bad conversations", f"turn {i} is not a {{from: str, value: str}} object")
        if not m["value"].strip():
            return Violation("empty turn", f"turn {i} ({m['from']}) is empty")
        if not _encodable(m["from"]) or not _encodable(m["value"]):
            return Violation("bad text", f"turn {i} holds a lone surrogate, which UTF-8 cannot write")
    body = conversations[1:] if conversations[0]["from"] == SYSTEM else conversations
    for i, m in enumerate(body):
        want = HUMAN if i % 2 == 0 else GPT
        if m["from"] != want:
            pos = i + len(conversations) - len(body)
            return Violation(
                "role order", f"turn {pos} is {m['from']!r}, expected {want!r} (roles must alternate)"
            )
    if not body or len(body) % 2:
        return Violation("role order", "the conversation must end with a gpt turn after a human turn")
    return None


def check_placeholders(conversations: list[dict[str, str]], num_images: int) -> Violation | None:
    """One `<image>` per image, none in the system turn, no other placeholders or special tokens."""
    if conversations[0]["from"] == SYSTEM and IMAGE in conversations[0]["value"]:
        return Violation("image count", "the system turn holds <image>, which LLaMA-Factory does not count")
    count = sum(m["value"].count(IMAGE) for m in conversations)
    if count != num_images:
        return Violation("image count", f"{count} <image> placeholder(s) but {num_images} image(s)")
    for i, m in enumerate(conversations):
        for p in OTHER_PLACEHOLDERS:
            if p in m["value"]:
                return Violation(
                    "placeholder", f"turn {i} holds {p}, which LLaMA-Factory treats as a media slot"
                )
        special = SPECIAL_TOKEN_RE.search(m["value"])
        if special:
            return Violation("special token", f"turn {i} holds the special token {special.group(0)} as text")
    return None


def check_row(
    conversations: Any, image_sizes: list[tuple[int, int]], limits: Limits
) -> tuple[Violation | None, int]:
    """All rules in order; returns the first broken one (or None) and the estimated token length."""
    problem = check_structure(conversations) or check_placeholders(conversations, len(image_sizes))
    if problem:
        return problem, 0
    tokens = row_tokens(
        (m["value"] for m in conversations), image_sizes, limits.image_max_pixels, limits.image_min_pixels,
        limits.family,
    )
    if tokens > limits.cutoff_len:
        return Violation("too long", f"about {tokens} tokens > cutoff_len {limits.cutoff_len}"), tokens
    return None, tokens
