"""Per-attempt seeds: derived from (run seed, item id, sample index), never from a shared RNG whose draws
would depend on the order in which concurrent attempts finish."""

from __future__ import annotations

import hashlib


def attempt_seed(run_seed: int, item_id: str, sample_index: int) -> int:
    digest = hashlib.sha256(f"{run_seed}\x00{item_id}\x00{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
