"""The in-context prompt: system prompt + k exemplar conversations + the question with its first view.

Exemplar conversations (their images included) are rendered and encoded once per run and shared by every
attempt; each attempt samples which k exemplars it sees, from its own seed, and records their ids.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.exemplars import Exemplar, load_exemplars, replay_exemplar
from minio3_data.images import OriginalCache
from minio3_data.protocol import SYSTEM_PROMPT
from minio3_data.render import conversation, to_teacher_messages
from minio3_data.teachers.base import ImageRef, Message

SAMPLINGS = ("patterns", "random", "fixed")  # how each attempt picks its k exemplars


def system_message(k: int) -> Message:
    if k == 0:
        return Message("system", [SYSTEM_PROMPT])
    note = (
        f" The first {k} conversation(s) below are solved examples that show how to search an image by "
        "zooming; solve the last question the same way."
    )
    return Message("system", [SYSTEM_PROMPT + note])


@dataclass
class RenderedExemplar:
    id: str
    messages: list[Message]  # user/assistant turns, images encoded once


def render_exemplar(ex: Exemplar, cache: OriginalCache) -> RenderedExemplar:
    observations = replay_exemplar(ex, cache)
    refs = [ImageRef(o.jpeg(), "image/jpeg", *o.size) for o in observations]
    chat = conversation(ex.question, ex.options, ex.turns)
    return RenderedExemplar(ex.id, to_teacher_messages(chat[1:], refs))


class ExemplarPrompts:
    """Samples k exemplars per attempt and assembles the shared prefix of its requests.

    `patterns` (default) shows as many different search patterns as k allows, `random` draws any k,
    `fixed` always shows the first k; the draw comes from the attempt's own seed and is recorded."""

    def __init__(self, exemplars_dir: Path | None, k: int, cache: OriginalCache, sampling: str = "patterns") -> None:
        if sampling not in SAMPLINGS:
            raise BadInputError(f"--exemplar-sampling {sampling!r}: use one of {', '.join(SAMPLINGS)}")
        exemplars = load_exemplars(exemplars_dir)
        self.k = min(k, len(exemplars))
        self.sampling = sampling
        self.rendered = [render_exemplar(ex, cache) for ex in exemplars]
        self.by_pattern: dict[str, list[RenderedExemplar]] = {}
        for ex, rendered in zip(exemplars, self.rendered):
            self.by_pattern.setdefault(ex.pattern, []).append(rendered)
        # shared by every attempt's prefix, like the exemplar messages: serialized once per run
        self.system = system_message(self.k)

    def images(self) -> Iterator[ImageRef]:
        """Every exemplar image, each once."""
        for ex in self.rendered:
            for message in ex.messages:
                yield from message.images

    def _choose(self, rng: random.Random) -> list[RenderedExemplar]:
        if self.sampling == "fixed":
            return self.rendered[: self.k]
        if self.sampling == "random":
            return rng.sample(self.rendered, self.k)
        # patterns: as many different search patterns as k allows, each exemplar drawn within its pattern
        pools = [rng.sample(v, len(v)) for v in self.by_pattern.values()]
        rng.shuffle(pools)
        order = [pool[i] for i in range(max(map(len, pools))) for pool in pools if i < len(pool)]
        return order[: self.k]

    def sample(self, rng: random.Random) -> tuple[list[str], list[Message]]:
        chosen = self._choose(rng)
        prefix = [self.system]
        for ex in chosen:
            prefix.extend(ex.messages)
        return [ex.id for ex in chosen], prefix
