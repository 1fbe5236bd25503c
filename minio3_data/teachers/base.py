"""The teacher protocols: messages (text + encoded images) in, text + usage + finish reason out.

`Speaker` continues one conversation. `Teacher` is what a run holds: it `bind`s a speaker to each
attempt, prepares images (`prepare_image` runs in the worker thread that encoded an image, so per-image
wire work such as base64 or writing a file never blocks the event loop), and owns the run's spending cap (`budget`).
Images travel as `ImageRef`s that are encoded once per trajectory and whose base64 form is computed
once and reused by every later request that re-sends them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from ..fsutil import atomic_write_bytes
from ..lazy import lazy
from ..records import ProbeItem, Usage
from .spending import SpendingCap

Role = Literal["system", "user", "assistant"]


@dataclass(eq=False)
class ImageRef:
    """Encoded image bytes plus their lazily computed, cached base64 text."""

    data: bytes
    mime: str = "image/jpeg"
    width: int = 0
    height: int = 0
    _file_parts: dict[Path, bytes] = field(default_factory=dict, init=False, repr=False)

    @property
    def b64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")

    @lazy
    def sha1(self) -> str:
        return hashlib.sha1(self.data).hexdigest()

    def file_part(self, directory: Path) -> bytes:
        """The content part pointing at this image as a local file (`file://`), written once under
        `directory` by content hash: for a server on the same machine or a shared filesystem (vLLM:
        --allowed-local-media-path), requests then carry a path instead of megabytes of base64."""
        part = self._file_parts.get(directory)
        if part is None:
            ext = self.mime.split("/")[-1].replace("jpeg", "jpg")
            path = directory.resolve() / f"{self.sha1}.{ext}"
            if not path.exists():
                atomic_write_bytes(path, self.data)
            part = b'{"type":"image_url","image_url":{"url":' + json.dumps(path.as_uri()).encode() + b"}}"
            self._file_parts[directory] = part
        return part

    @lazy
    def openai_part(self) -> bytes:
        """The serialized chat-completions content part, built once: every request that re-sends the image
        splices these bytes into its body instead of re-encoding megabytes of base64 into JSON. One join: the
        base64 is copied once, not once per concatenation."""
        head = b'{"type":"image_url","image_url":{"url":"data:' + self.mime.encode("ascii") + b";base64,"
        return b"".join((head, base64.b64encode(self.data), b'"}}'))


Part = str | ImageRef


@dataclass
class Message:
    """One chat message; `parts` keeps text and images in order. `extra` carries provider state
    (e.g. Gemini thought signatures) that must be echoed back verbatim on later turns.

    `parts` is never changed after construction: exemplar messages are shared by every request of a
    run, so their text, images and wire forms are computed once and cached on the message."""

    role: Role
    parts: list[Part]
    extra: dict[str, Any] = field(default_factory=dict)
    _wire: dict[Hashable, list[bytes]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @lazy
    def text(self) -> str:
        return "".join(p for p in self.parts if isinstance(p, str))

    @lazy
    def images(self) -> list[ImageRef]:
        return [p for p in self.parts if isinstance(p, ImageRef)]

    def wire(self, key: Hashable, build: Callable[[Message], list[bytes]]) -> list[bytes]:
        """This message serialized by `build` (a transport's encoder, named by `key`), built once."""
        fragments = self._wire.get(key)
        if fragments is None:
            fragments = self._wire[key] = build(self)
        return fragments


@dataclass
class Reply:
    text: str
    usage: Usage
    finish_reason: str  # "stop", "length", ...
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class GenerationConfig:
    stop: list[str] = field(default_factory=list)
    max_tokens: int = 2048
    temperature: float = 1.0
    seed: int | None = None


@runtime_checkable
class Speaker(Protocol):
    """Anything that continues a conversation with one assistant turn."""

    name: str  # "backend:model", recorded in every trajectory

    async def generate(self, messages: list[Message], config: GenerationConfig) -> Reply: ...


@runtime_checkable
class Teacher(Speaker, Protocol):
    """The teacher a run holds: one speaker per attempt, image preparation, a spending budget."""

    budget: SpendingCap

    def bind(self, item: ProbeItem, seed: int) -> Speaker:
        """The speaker for one attempt (an API teacher is the same for all; the scripted one plans per item)."""
        ...

    def prepare_image(self, ref: ImageRef) -> None: ...

    async def aclose(self) -> None: ...
