"""One OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, LMDeploy, ...).

One request per `generate`, SDK retries off: `GuardedTeacher` decides about retries, pauses and
budget. Images go as `image_url` data URLs built from each ImageRef's cached base64, so an image is
encoded once per trajectory however many requests re-send it. `--timeout` is the whole request's deadline
and the reply's bytes are capped (bounds.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai
from openai import AsyncOpenAI

from ..protocol import restore_stop
from ..records import Usage
from .base import GenerationConfig, ImageRef, Message, Reply
from .bounds import bounded, cap_replies
from .resilience import RequestError, connection_refused, log, server_message
from .usage import read_usage, token_count

DEFAULT_BASE_URL = "https://api.openai.com/v1"
ADJUSTABLE = ("stop", "temperature", "seed")  # parameters dropped when an endpoint says it does not support them
SLICE = 1 << 18  # bytes per socket write: an upload the server reads slowly buffers at most this much of its body


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _message_fragments(m: Message, image_dir: Path | None) -> list[bytes]:
    """One message as JSON fragments: its texts and framing glued together, each image its own
    pre-serialized part (ImageRef.openai_part), shared with every other request that re-sends it."""
    head = b'{"role":' + _dumps(m.role) + b',"content":'
    if not m.images:
        return [head + _dumps(m.text) + b"}"]
    fragments: list[bytes] = []
    pending = [head, b"["]
    for j, p in enumerate(m.parts):
        if j:
            pending.append(b",")
        if isinstance(p, str):
            pending.append(_dumps({"type": "text", "text": p}))
            continue
        fragments += [b"".join(pending), p.openai_part if image_dir is None else p.file_part(image_dir)]
        pending = []
    pending.append(b"]}")
    return [*fragments, b"".join(pending)]


def request_chunks(
    model: str, messages: list[Message], params: dict[str, Any], image_dir: Path | None = None
) -> list[bytes]:
    """The chat-completions JSON body as fragments. Each message is serialized once (exemplar messages
    are shared by every request of a run) and each image part is shared bytes, so a request costs no
    JSON encode of its images, only one join into the whole body."""
    chunks = [b'{"model":', _dumps(model), b',"messages":[']
    key = ("openai", image_dir)
    for i, m in enumerate(messages):
        if i:
            chunks.append(b",")
        chunks += m.wire(key, lambda m: _message_fragments(m, image_dir))
    chunks.append(b"]")
    if params:
        chunks += [b",", _dumps(params)[1:]]  # the parameters' object without its opening brace
    else:
        chunks.append(b"}")
    return chunks


class FragmentBody:
    """A request body sent as its fragments under a declared Content-Length (`length`). Plain HTTP/1.1 servers
    read Content-Length only (a chunked body reads as empty), and a joined body would cost every request in
    flight its own copy (~3 MB with images inline); streamed, the requests share the pre-serialized image
    parts and the socket buffers one slice at a time. Iterable again and again (a fresh pass each time)."""

    def __init__(self, fragments: list[bytes]):
        self.fragments = fragments
        self.length = sum(map(len, fragments))

    async def __aiter__(self) -> AsyncIterator[memoryview]:
        for fragment in self.fragments:
            view = memoryview(fragment)
            for start in range(0, len(view), SLICE):
                yield view[start : start + SLICE]


class OpenAITeacher:
    """An `Endpoint` for one base URL with its own AsyncOpenAI client."""

    def __init__(
        self, model: str, *, api_key: str, base_url: str | None = None, timeout: float = 120.0,
        image_dir: Path | None = None,
    ):
        self.model = model
        self.name = f"openai:{model}"
        self.endpoint = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        # the SDK's aiohttp transport: its per-request CPU is about half of httpx's, whose pool also probes
        # every idle connection on each request (quadratic at hundreds of requests in flight)
        self._client = AsyncOpenAI(api_key=api_key, base_url=self.endpoint, timeout=timeout, max_retries=0,
                                   http_client=openai.DefaultAioHttpClient(
                                       timeout=timeout, event_hooks={"response": [cap_replies]}))
        # Reasoning models (o-series, gpt-5) refuse `max_tokens`, `stop` and non-default temperatures;
        # learnt from their first 400 and remembered for this endpoint.
        self._max_tokens_field = "max_tokens"
        self._dropped: set[str] = set()
        self.image_dir = image_dir  # set: images go as file:// URLs written there (see ImageRef.file_part)

    def __repr__(self) -> str:
        return f"OpenAITeacher(model={self.model!r}, endpoint={self.endpoint!r})"

    def prepare_image(self, ref: ImageRef) -> None:
        """Build an image's wire form once, off the event loop (called from the thread that encoded it):
        its base64 part, or its file under image_dir for file:// URLs."""
        if self.image_dir is None:
            ref.openai_part  # noqa: B018 (a cached property, computed here)
        else:
            ref.file_part(self.image_dir)

    def _adapt(self, message: str) -> bool:
        """Switch off a parameter the server says it does not support; True when something changed."""
        if self._max_tokens_field == "max_tokens" and "max_completion_tokens" in message:
            self._max_tokens_field = "max_completion_tokens"
        else:
            refused = [p for p in ADJUSTABLE if p not in self._dropped and f"'{p}'" in message]
            if not refused or "support" not in message.lower():
                return False
            self._dropped.add(refused[0])
        log.info("%s: %s; adjusting the request", self.endpoint, message[:200])
        return True

    async def generate(self, messages: list[Message], config: GenerationConfig) -> Reply:
        async with bounded(self.endpoint, self.timeout, config.max_tokens):
            return await self._request(messages, config)

    async def _request(self, messages: list[Message], config: GenerationConfig) -> Reply:
        while True:
            wanted = {"temperature": config.temperature, "stop": list(config.stop) or None, "seed": config.seed}
            kwargs = {k: v for k, v in wanted.items() if v is not None and k not in self._dropped}
            kwargs[self._max_tokens_field] = config.max_tokens
            try:
                # pre-serialized fragments skip the SDK's typed-dict transform and JSON encode of megabytes
                # of base64 on every turn (~30 ms a request with exemplar images in context); they are
                # streamed, not joined, under a Content-Length, which every HTTP/1.1 server and proxy reads
                body = FragmentBody(request_chunks(self.model, messages, kwargs, self.image_dir))
                resp = await self._client.post(
                    "/chat/completions",
                    content=body,
                    options={"headers": {"Content-Type": "application/json", "Content-Length": str(body.length)}},
                    cast_to=httpx2.Response,  # read as plain JSON below
                )
                break
            except openai.APIStatusError as e:
                message = server_message(e.body)
                if e.status_code == 400 and self._adapt(message):
                    continue
                raise RequestError.from_status(
                    self.endpoint, e.status_code, e.response.headers, message, self._client.api_key
                ) from None
            except openai.APIConnectionError as e:  # APITimeoutError too: aiohttp calls a refusal a connect timeout
                if isinstance(e, openai.APITimeoutError) and not connection_refused(e):
                    raise RequestError(self.endpoint, f"no reply within {self.timeout:g} s") from None
                raise RequestError.connection(self.endpoint, e) from None
            except openai.APIError as e:
                raise RequestError(self.endpoint, f"unreadable reply ({e.__class__.__name__})") from None
        try:
            return _reply(json.loads(resp.content))
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:  # a 200 that is no chat completion
            raise RequestError(self.endpoint, f"unreadable reply ({e.__class__.__name__})") from None

    async def aclose(self) -> None:
        await self._client.close()


def _reply(data: dict[str, Any]) -> Reply:
    """A chat-completions JSON reply read as plain data (the SDK's typed models cost more than the whole
    rest of a request); KeyError/TypeError on a reply of another shape."""
    choice = data["choices"][0]
    message = choice["message"]
    finish = choice.get("finish_reason") or "stop"
    text = message.get("content") or ""
    if not isinstance(text, str):
        raise TypeError("content is not text")
    if finish == "stop":
        text = restore_stop(text)
    extra: dict[str, Any] = {}
    reasoning = message.get("reasoning_content") or message.get("reasoning")  # vLLM / SGLang reasoning parsers
    if isinstance(reasoning, str) and reasoning:
        extra["reasoning"] = reasoning  # kept apart: the turn text is what the student learns to write
    usage = read_usage(data.get("usage"), _usage, extra)
    return Reply(text=text, usage=usage, finish_reason=finish, extra=extra)


def _usage(u: dict[str, Any]) -> Usage:
    """Usage with hidden reasoning tokens moved out of completion_tokens into thought_tokens; ValueError,
    TypeError or AttributeError on junk."""
    reasoning = token_count((u.get("completion_tokens_details") or {}).get("reasoning_tokens"))
    completion = token_count(u.get("completion_tokens"))
    return Usage(prompt_tokens=token_count(u.get("prompt_tokens")), completion_tokens=max(0, completion - reasoning),
                 thought_tokens=reasoning)
