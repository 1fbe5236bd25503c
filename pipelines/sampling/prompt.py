"""The in-context prompt: system prompt + k exemplar conversations + the question with its first view.

Exemplar conversations (their images included) are rendered and encoded once per run and shared by every
attempt; each attempt samples which k exemplars it sees, from its own seed, and records their ids.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError
from minio3_data.exemplars import Exemplar, load_exemplars, replay_exemplar
from minio3_data.images import OriginalCache
from minio3_data.profiles import DEFAULT, ProtocolProfile
from minio3_data.protocol import Zoom
from minio3_data.render import conversation, to_teacher_messages
from minio3_data.teachers.base import ImageRef, Message

SAMPLINGS = ("patterns", "random", "fixed")  # how each attempt picks its k exemplars


def hash_text(h: Any, text: str) -> None:
    """Feed `text` into hash `h` length-prefixed, so that no two different sequences feed the same bytes."""
    data = text.encode("utf-8", "surrogatepass")
    h.update(len(data).to_bytes(8, "little") + data)


def hash_messages(h: Any, messages: Iterable[Message]) -> None:
    """Feed what a request says into hash `h`: each message's role, texts and image hashes."""
    for m in messages:
        hash_text(h, f"{m.role}:{len(m.parts)}")
        for p in m.parts:
            hash_text(h, p if isinstance(p, str) else f"image:{p.sha1}")


def system_message(k: int, profile: ProtocolProfile) -> Message:
    """The profile's system prompt, with a note on the k exemplars that follow (the teacher's prompt only:
    exported trajectories carry the profile's prompt alone)."""
    if k == 0:
        return Message("system", [profile.system_prompt])
    note = (
        f" The first {k} conversation(s) below are solved examples that show how to search an image by "
        "zooming; solve the last question the same way."
    )
    return Message("system", [profile.system_prompt + note])


@dataclass
class RenderedExemplar:
    id: str
    messages: list[Message]  # user/assistant turns, images encoded once


def render_exemplar(ex: Exemplar, cache: OriginalCache, profile: ProtocolProfile) -> RenderedExemplar:
    """An exemplar as the teacher sees it: its observations at the profile's display sizes, in its words."""
    observations = replay_exemplar(ex, cache, profile)
    refs = [ImageRef(o.jpeg(), "image/jpeg", *o.size) for o in observations]
    turns = [replace(t, text=profile.in_words(t.text, Zoom(tuple(t.bbox), t.source))) if t.bbox else t for t in ex.turns]
    chat = conversation(ex.question, ex.options, turns, protocol=profile)
    return RenderedExemplar(ex.id, to_teacher_messages(chat[1:], refs))


class ExemplarPrompts:
    """Samples k exemplars per attempt and assembles the shared prefix of its requests.

    `patterns` (default) shows as many different search patterns as k allows, `random` draws any k,
    `fixed` always shows the first k; the draw comes from the attempt's own seed and is recorded."""

    def __init__(
        self, exemplars_dir: Path | None, k: int, cache: OriginalCache, sampling: str = "patterns",
        protocol: ProtocolProfile = DEFAULT,
    ) -> None:
        if sampling not in SAMPLINGS:
            raise BadInputError(f"--exemplar-sampling {sampling!r}: use one of {', '.join(SAMPLINGS)}")
        profile = protocol
        # none in context (an evaluation, where the policy under test must see only the question): none loaded,
        # so the prompts' digest, and with it the run's identity, does not depend on any exemplar
        exemplars = load_exemplars(exemplars_dir) if k > 0 else []
        self.k = min(k, len(exemplars))
        self.sampling = sampling
        self.rendered = [render_exemplar(ex, cache, profile) for ex in exemplars]
        self.by_pattern: dict[str, list[RenderedExemplar]] = {}
        for ex, rendered in zip(exemplars, self.rendered):
            self.by_pattern.setdefault(ex.pattern, []).append(rendered)
        # shared by every attempt's prefix, like the exemplar messages: serialized once per run
        self.system = system_message(self.k, profile)

    def digest(self) -> str:
        """What every attempt's prompt can hold, hashed: the system message and each exemplar, in order, with
        its id, texts and image hashes. Part of the run's identity: edited exemplars give another digest."""
        h = hashlib.sha256()
        hash_messages(h, [self.system])
        for ex in self.rendered:
            hash_text(h, f"{ex.id}:{len(ex.messages)}")
            hash_messages(h, ex.messages)
        return h.hexdigest()[:16]

    def images(self) -> Iterator[ImageRef]:
        """Every exemplar image, each once."""
        for ex in self.rendered:
            for message in ex.messages:
                yield from message.images

    def _choose(self, rng: random.Random) -> list[RenderedExemplar]:
        if self.k == 0:
            return []
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
