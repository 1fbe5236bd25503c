"""A loopback HTTP server that plays a teacher over the OpenAI and Gemini REST APIs, with faults on demand.

Both SDKs send through httpx2, which respx and mock transports do not intercept, so tests and
benchmarks talk to this real server on 127.0.0.1 instead:

    with LoopbackTeacher(answers={"What colour is the car?": "red"}) as srv:
        OpenAI(base_url=srv.openai_url, ...)          # POST /v1/chat/completions
        genai.Client(http_options={"base_url": srv.url, "api_version": "v1beta"})  # :generateContent
        srv.inject(Fault.rate_limited(retry_after=1), times=2)   # the next two requests get 429
        srv.inject_every(5, Fault.server_error(503))              # then every 5th request a 503

A policy `(RequestView) -> str` writes the reply. The default one zooms on its first turn of an item
and answers on the next, from `answers` (question -> answer; "A" when unknown). Like real servers it
cuts the reply at the first stop string the request names, so clients must re-append it.

It is as plain as the servers users run: it reads request bodies by Content-Length only, as Python's
`http.server` and many small proxies do (a chunked upload breaks the connection, as it would there), and
it can answer like other server stacks: `error_shape="fastapi"` sends errors as FastAPI does
(`{"detail": ...}`, plain-text 500s), `served_models` refuses other model names, and `fail_on_stop`
crashes (HTTP 500) on any request that carries `stop`, as some servers do for vision models.
Importable by benchmarks (`latency=0, record=False` for a zero-latency teacher) and usable as a pytest
fixture (import `loopback_fixture`; tests ask for `loopback`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from typing_extensions import Self

from minio3_data.profiles.minio3 import ERROR_TEMPLATE, OBSERVATION_TEMPLATE
from minio3_data.teachers import GenerationConfig, GuardedTeacher, Message, Reply, make_teacher

ZOOM_REPLY = (
    "<think>The detail is too small to read at this size; zoom into the centre.</think>\n"
    '<grounding>{"bbox_2d": [0.25, 0.25, 0.75, 0.75], "source": "original_image"}</grounding>'
)
MALFORMED_REPLY = '<think>Zoom in.</think>\n<grounding>{"bbox_2d": [0.2, "left", 0.5'
_NOT_QUESTIONS = (OBSERVATION_TEMPLATE.split("{")[0], ERROR_TEMPLATE.split("{")[0])
DRIP_BYTES = 16
_GEMINI_STATUS = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 400: "INVALID_ARGUMENT"}


@dataclass
class Fault:
    """What to do to one request instead of (or on top of) a normal reply."""

    status: int = 200
    retry_after: float | None = None  # sent as Retry-After (seconds)
    delay: float = 0.0  # wait before replying; longer than the client timeout = a timeout
    text: str | None = None  # reply text instead of the policy's
    truncate: bool = False  # half the reply, finish_reason length / MAX_TOKENS
    body: bytes | None = None  # a raw body instead of JSON (a broken reply)
    message: str = "injected fault"
    drip: float = 0.0  # send the body DRIP_BYTES at a time, this many seconds apart (headers at once)
    pad: int = 0  # characters appended to the reply text (a reply far beyond max_tokens)
    usage: Any = None  # sent instead of the usage object when not None (junk usage)

    @classmethod
    def rate_limited(cls, retry_after: float | None = 1.0) -> Fault:
        return cls(status=429, retry_after=retry_after, message="rate limit reached")

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls(status=status, message="server error")

    @classmethod
    def bad_request(cls, message: str) -> Fault:
        return cls(status=400, message=message)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls(delay=seconds)

    @classmethod
    def truncated(cls) -> Fault:
        return cls(truncate=True)

    @classmethod
    def malformed(cls, text: str = MALFORMED_REPLY) -> Fault:
        return cls(text=text)

    @classmethod
    def broken_body(cls) -> Fault:
        return cls(body=b'{"choices": [')

    @classmethod
    def not_json(cls) -> Fault:
        """A 200 that is a web page, as a UI or a proxy on the wrong port answers."""
        return cls(body=b"<!doctype html><html><body>Welcome</body></html>")

    @classmethod
    def dripping(cls, seconds_apart: float = 0.05) -> Fault:
        """A whole reply sent DRIP_BYTES at a time: every read gets bytes long before a read timeout."""
        return cls(drip=seconds_apart)

    @classmethod
    def oversize(cls, chars: int = 2_000_000) -> Fault:
        return cls(pad=chars)

    @classmethod
    def junk_usage(cls, usage: Any) -> Fault:
        return cls(usage=usage)


@dataclass
class RequestView:
    """The conversation of one request, whichever API it came through."""

    api: str  # "openai" | "gemini"
    model: str
    # (system|user|assistant, texts, images) in order; an image is base64 text, or the path of a file:// URL,
    # read only when asked for (a zero-latency teacher should cost the client's machine little)
    messages: list[tuple[str, list[str], list[str | Path]]]
    stop: list[str] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [t for _, texts, _ in self.messages for t in texts]

    @property
    def num_images(self) -> int:
        return sum(len(imgs) for _, _, imgs in self.messages)

    def images(self) -> list[bytes]:
        """Decoded image bytes in order (Gemini's SDK sends URL-safe base64, OpenAI's standard)."""
        return [
            b.read_bytes() if isinstance(b, Path) else base64.b64decode(b.replace("-", "+").replace("_", "/"))
            for _, _, imgs in self.messages for b in imgs
        ]

    def _question_index(self) -> int:
        """The last user message that is a question (not an observation or an error turn): the current item."""
        for i in range(len(self.messages) - 1, -1, -1):
            role, texts, _ = self.messages[i]
            if role == "user" and not "".join(texts).lstrip().startswith(_NOT_QUESTIONS):
                return i
        return 0

    @property
    def question(self) -> str:
        return "".join(self.messages[self._question_index()][1]).strip() if self.messages else ""

    @property
    def turn(self) -> int:
        """Assistant turns already taken on the current item."""
        return len(self.own_turns)

    @property
    def own_turns(self) -> list[str]:
        """The texts of the assistant turns already taken on the current item."""
        return ["".join(texts) for role, texts, _ in self.messages[self._question_index():] if role == "assistant"]


Policy = Callable[[RequestView], str]


def zoom_then_answer(answers: dict[str, str] | None = None, fallback: str = "A") -> Policy:
    """Zoom into the centre on the first turn, then answer from `answers` (exact question, else a
    question that contains the key)."""
    answers = answers or {}

    def policy(view: RequestView) -> str:
        if view.turn == 0:
            return ZOOM_REPLY
        q = view.question
        answer = answers.get(q) or next((a for k, a in answers.items() if k in q), fallback)
        return f"<think>The zoomed view shows it clearly.</think>\n<answer>{answer}</answer>"

    return policy


Plan = tuple[int | None, str | None]  # (zooms before answering or None: zoom forever, answer or None: void)
_PLAN_RE = re.compile(r"\[plan (\d+)\]")


def planned(plans: dict[str, list[Plan]]) -> Policy:
    """A policy that plays a script: for each question (a key the question text contains), one plan per
    trajectory. A trajectory takes its question's next unused plan on its first turn and names it in its
    thought ("[plan 2]"), so that its later requests find it again; it zooms `zooms` times, then answers
    (`answer` None: a turn with no action, void in the released protocol), or zooms for ever (`zooms` None).

    Which trajectory draws which plan depends on the order requests arrive in, but the plans a question's
    trajectories play do not: Avg@k, over-turn rates and mean turns come out the same run after run."""
    lock = threading.Lock()
    drawn: Counter[str] = Counter()

    def policy(view: RequestView) -> str:
        key = next(k for k in plans if k in view.question)
        if view.turn == 0:
            with lock:
                index, drawn[key] = drawn[key], drawn[key] + 1
        else:
            index = int(_PLAN_RE.search(view.own_turns[0]).group(1))  # type: ignore[union-attr]
        zooms, answer = plans[key][index % len(plans[key])]
        if zooms is None or view.turn < zooms:
            return ZOOM_REPLY.replace("<think>", f"<think>[plan {index}] ")
        if answer is None:
            return f"<think>[plan {index}] I cannot tell.</think>"
        return f"<think>[plan {index}] The zoomed view shows it.</think>\n<answer>{answer}</answer>"

    return policy


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]
    view: RequestView | None


def _openai_view(body: dict[str, Any]) -> RequestView:
    messages = []
    for m in body.get("messages", []):
        content = m.get("content")
        texts, images = [], []
        for part in [content] if isinstance(content, str) else content or []:
            if isinstance(part, str):
                texts.append(part)
            elif part.get("type") == "text":
                texts.append(part["text"])
            elif part.get("type") == "image_url":
                url = part["image_url"]["url"]
                if url.startswith("file://"):  # a server on the same filesystem reads the file itself
                    images.append(Path(unquote(urlparse(url).path)))
                else:
                    images.append(url.split(",", 1)[1])
        messages.append((m["role"], texts, images))
    stop = body.get("stop") or []
    return RequestView("openai", body.get("model", ""), messages, [stop] if isinstance(stop, str) else list(stop))


def _gemini_view(model: str, body: dict[str, Any]) -> RequestView:
    def parts(content: dict[str, Any]) -> tuple[list[str], list[str]]:
        texts, images = [], []
        for p in content.get("parts", []):
            blob = p.get("inlineData") or p.get("inline_data")
            if blob:
                images.append(blob["data"])
            elif "text" in p and not p.get("thought"):
                texts.append(p["text"])
        return texts, images

    messages = []
    system = body.get("systemInstruction") or body.get("system_instruction")
    if system:
        messages.append(("system", *parts(system)))
    for c in body.get("contents", []):
        messages.append(("assistant" if c.get("role") == "model" else "user", *parts(c)))
    gen = body.get("generationConfig") or body.get("generation_config") or {}
    stop = gen.get("stopSequences") or gen.get("stop_sequences") or []
    return RequestView("gemini", model, messages, list(stop))


def _cut_at_stop(text: str, stop: list[str]) -> str:
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[: min(cuts)] if cuts else text


class _Server(ThreadingHTTPServer):
    request_queue_size = 512  # the stdlib's 5 drops connections under concurrency
    daemon_threads = True
    owner: LoopbackTeacher


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else headers and body in two segments meet delayed ACK: +40 ms a reply
    server: _Server

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        # Content-Length only, like http.server: a chunked body stays unread and is parsed as the next request
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        owner = self.server.owner
        try:
            status, headers, data, drip = owner.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if not drip:
                self.wfile.write(data)
                return
            for i in range(0, len(data), DRIP_BYTES):
                self.wfile.write(data[i : i + DRIP_BYTES])
                self.wfile.flush()
                time.sleep(drip)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout, a reply too large): nothing to answer


class LoopbackTeacher:
    """A started server; `url` is its root, `openai_url` the OpenAI base URL (root + /v1)."""

    def __init__(
        self,
        policy: Policy | None = None,
        *,
        answers: dict[str, str] | None = None,
        latency: float = 0.0,
        thought_tokens: int = 0,
        reasoning: str | None = None,
        thought_signature: str | None = None,
        record: bool = True,
        error_shape: str = "openai",
        served_models: set[str] | None = None,
        fail_on_stop: bool = False,
    ):
        self.policy = policy or zoom_then_answer(answers)
        self.latency = latency
        self.thought_tokens = thought_tokens
        self.reasoning = reasoning  # OpenAI-compatible `reasoning_content` (vLLM reasoning parsers)
        self.thought_signature = thought_signature  # Gemini `thoughtSignature` on the reply's text part
        self.record = record
        self.error_shape = error_shape  # "openai" | "fastapi": how error bodies look
        self.served_models = served_models  # None: any model name is served
        self.fail_on_stop = fail_on_stop
        self.requests: list[Recorded] = []
        self.count = 0
        self._faults: deque[Fault] = deque()
        self._every: list[tuple[int, Fault]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.openai_url = self.url + "/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to the next `times` requests (after faults already queued)."""
        with self._lock:
            self._faults.extend([fault] * times)

    def inject_every(self, k: int, fault: Fault) -> None:
        """Apply `fault` to every k-th request (the k-th, 2k-th, ... counted from the start)."""
        with self._lock:
            self._every.append((k, fault))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            self.count += 1
            if self._faults:
                return self._faults.popleft()
            return next((f for k, f in self._every if self.count % k == 0), None)

    def handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes, float]:
        """Status, headers, body, and the seconds between the body's pieces (0: all at once)."""
        fault = self._next_fault() or Fault()
        status, reply_headers, data = self._answer(path, headers, raw, fault)
        return status, reply_headers, data, fault.drip

    def _answer(self, path: str, headers: dict[str, str], raw: bytes, fault: Fault) -> tuple[int, dict[str, str], bytes]:
        body = json.loads(raw or b"{}")
        if path.startswith("/v1/chat/completions"):
            view: RequestView | None = _openai_view(body)
        elif ":generateContent" in path and path.startswith(("/v1/models/", "/v1beta/models/")):
            view = _gemini_view(path.split("/models/", 1)[1].split(":", 1)[0], body)
        else:
            view = None
        if self.record:
            with self._lock:
                self.requests.append(Recorded(path, headers, body, view))
        if self.latency or fault.delay:
            time.sleep(self.latency + fault.delay)
        if view is None:
            return 404, {"Content-Type": "application/json"}, b'{"error": {"code": 404, "message": "no such route"}}'
        if fault.body is not None:
            return fault.status, {"Content-Type": "application/json"}, fault.body
        if fault.status == 200 and self.served_models is not None and view.model not in self.served_models:
            fault = Fault(status=400, message=f"The model `{view.model}` does not exist.")
        if fault.status == 200 and self.fail_on_stop and view.stop:
            fault = Fault(status=500, message="Internal Server Error")
        if fault.status != 200:
            return self._error(view.api, fault)
        text = fault.text if fault.text is not None else self.policy(view)
        text = _cut_at_stop(text, view.stop)
        finish = "length" if fault.truncate else "stop"
        if fault.truncate:
            text = text[: len(text) // 2]
        text += "x" * fault.pad
        prompt = sum(len(t) for t in view.texts) // 4 + 100 * view.num_images
        payload = (self._openai_reply if view.api == "openai" else self._gemini_reply)(view, text, finish, prompt)
        if fault.usage is not None:
            payload["usage" if view.api == "openai" else "usageMetadata"] = fault.usage
        return 200, {"Content-Type": "application/json"}, json.dumps(payload).encode()

    def _error(self, api: str, fault: Fault) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/json"}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if self.error_shape == "fastapi" and fault.status >= 500:  # an unhandled exception under uvicorn
            return fault.status, headers | {"Content-Type": "text/plain; charset=utf-8"}, b"Internal Server Error"
        if self.error_shape == "fastapi":
            return fault.status, headers, json.dumps({"detail": fault.message}).encode()
        if api == "gemini":
            err = {"code": fault.status, "message": fault.message, "status": _GEMINI_STATUS.get(fault.status, "UNKNOWN")}
        else:
            err = {"message": fault.message, "type": "loopback_fault", "code": str(fault.status)}
        return fault.status, headers, json.dumps({"error": err}).encode()

    def _openai_reply(self, view: RequestView, text: str, finish: str, prompt: int) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        completion = max(1, len(text) // 4)
        return {
            "id": f"loopback-{self.count}", "object": "chat.completion", "created": 0, "model": view.model,
            "choices": [{"index": 0, "finish_reason": finish, "message": message}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion + self.thought_tokens,
                      "total_tokens": prompt + completion + self.thought_tokens,
                      "completion_tokens_details": {"reasoning_tokens": self.thought_tokens}},
        }

    def _gemini_reply(self, view: RequestView, text: str, finish: str, prompt: int) -> dict[str, Any]:
        part: dict[str, Any] = {"text": text}
        if self.thought_signature:
            part["thoughtSignature"] = self.thought_signature
        completion = max(1, len(text) // 4)
        return {
            "candidates": [{"content": {"role": "model", "parts": [part]},
                            "finishReason": "MAX_TOKENS" if finish == "length" else "STOP"}],
            "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": completion,
                              "thoughtsTokenCount": self.thought_tokens,
                              "totalTokenCount": prompt + completion + self.thought_tokens},
            "modelVersion": view.model,
        }


class NothingListening:
    """A loopback address where no server listens: connections to it are refused at once."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.openai_url = self.url + "/v1"


def fast_teacher(
    kind: str, *servers: LoopbackTeacher | NothingListening, model: str = "loopback-model", **options: Any
) -> GuardedTeacher:
    """Our `kind` teacher ("openai" | "gemini") round-robin over `servers`, with test-speed timeout and back-off
    (a millisecond base, capped at 10 ms: also the longest Retry-After it waits; pass backoff_max to wait longer).
    `options` override make_teacher's (api_key_env defaults to NONE: no key needed)."""
    urls = [srv.openai_url if kind == "openai" else srv.url for srv in servers]
    settings: dict[str, Any] = {"api_key_env": "NONE", "timeout": 0.5, "backoff_base": 0.001, "backoff_max": 0.01}
    if kind == "gemini":
        settings["api_version"] = "v1beta"
    return make_teacher(kind, model=model, base_urls=urls, **(settings | options))


async def ask(
    teacher: GuardedTeacher, messages: list[Message], config: GenerationConfig, n: int = 1, concurrent: bool = False
) -> list[Reply]:
    """n generate calls (sequential or concurrent), then close the teacher (also when cancelled)."""
    try:
        if concurrent:
            return list(await asyncio.gather(*(teacher.generate(messages, config) for _ in range(n))))
        return [await teacher.generate(messages, config) for _ in range(n)]
    finally:
        await teacher.aclose()


@pytest.fixture(name="loopback")
def loopback_fixture() -> Iterator[LoopbackTeacher]:
    """A fresh loopback teacher with the default policy, closed after the test."""
    with LoopbackTeacher() as srv:
        yield srv
