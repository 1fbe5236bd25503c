"""What the evaluation loops of DeepEyes and Chain-of-Focus share: a tool that names no source image (every
zoom is on the one image crops are cut from), turns kept as the server returned them, the model's own bytes
in the conversation. Not a profile itself (no `PROFILE`)."""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import Answer, Zoom
from .base import EVAL_ONLY, ProtocolProfile


@dataclass(frozen=True)
class SingleSourceProfile(ProtocolProfile):
    stages: frozenset[str] = EVAL_ONLY  # docs/conventions.md says why synthesis, export and RL are not offered
    def trim_turn(self, text: str) -> str:
        """The turn as the server returned it: these releases keep it whole."""
        return text

    def stored_turn(self, text: str, action: Zoom | Answer) -> str:
        """The model's own bytes: these releases keep them in the conversation."""
        return text

    def resolve_source(self, source: str) -> int:
        """Always 0: the tool names no source."""
        return 0

    def missing_source(self, source: str, num_observations: int) -> str:
        return ""
