"""The OpenAI request body is spliced from cached fragments; it must equal a plain JSON encode, and it is streamed
to the server under a declared Content-Length, never joined into a copy per request."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minio3_data.teachers.base import GenerationConfig, ImageRef, Message
from minio3_data.teachers.openai_compat import SLICE, OpenAITeacher, request_chunks

IMAGES = [ImageRef(bytes([i]) * (50 + i), "image/jpeg", 10, 10) for i in range(3)]
part = st.one_of(st.text(max_size=20), st.sampled_from(IMAGES))
message = st.builds(Message, st.sampled_from(["system", "user", "assistant"]), st.lists(part, max_size=4))


def plain_body(model: str, messages: list[Message], params: dict) -> dict:
    def content(m: Message):
        if not m.images:
            return m.text
        return [
            {"type": "text", "text": p} if isinstance(p, str)
            else {"type": "image_url", "image_url": {"url": f"data:{p.mime};base64,{base64.b64encode(p.data).decode()}"}}
            for p in m.parts
        ]
    return {"model": model, "messages": [{"role": m.role, "content": content(m)} for m in messages], **params}


@given(st.lists(message, max_size=5), st.text(max_size=5),
       st.sampled_from([{}, {"max_tokens": 7, "stop": ["</answer>"], "temperature": 0.5}]))
def test_body_equals_a_plain_json_encode(messages, model, params):
    body = b"".join(request_chunks(model, messages, params))
    assert json.loads(body) == plain_body(model, messages, params)
    assert b"".join(request_chunks(model, messages, params)) == body  # cached fragments give the same bytes


def test_image_bytes_are_shared_not_copied(tmp_path: Path):
    shared = Message("user", ["Look:", IMAGES[0], "and", IMAGES[1]])
    first, second = request_chunks("m", [shared], {}), request_chunks("m", [shared], {})
    assert any(c is IMAGES[0].openai_part for c in first)
    assert [id(c) for c in first if len(c) > 40] == [id(c) for c in second if len(c) > 40]
    files = request_chunks("m", [shared], {}, image_dir=tmp_path)  # another transport: its own fragments
    urls = [p["image_url"]["url"] for p in json.loads(b"".join(files))["messages"][0]["content"] if "image_url" in p]
    assert [Path(u.removeprefix("file://")).read_bytes() for u in urls] == [IMAGES[0].data, IMAGES[1].data]


def test_replies_are_read_as_plain_json():
    from minio3_data.teachers.openai_compat import _reply

    r = _reply({"choices": [{"message": {"content": '<answer>A', "reasoning_content": "hmm"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 7, "completion_tokens_details": {"reasoning_tokens": 3}}})
    assert (r.text, r.extra, r.finish_reason) == ("<answer>A</answer>", {"reasoning": "hmm"}, "stop")
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.thought_tokens) == (10, 4, 3)
    cut = _reply({"choices": [{"message": {"content": None}, "finish_reason": "length"}]})
    assert (cut.text, cut.finish_reason, cut.usage.prompt_tokens) == ("", "length", 0)
    for odd in ({"choices": []}, {"object": "error"}, {"choices": [{"message": {"content": ["x"]}}]}):
        with pytest.raises((LookupError, TypeError)):
            _reply(odd)


REPLY = json.dumps({"choices": [{"message": {"content": "<answer>A"}, "finish_reason": "stop"}]}).encode()


class _PlainHandler(BaseHTTPRequestHandler):
    """http.server as users run it: the body is read by Content-Length only; each request is kept raw."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, raw))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(REPLY)))
        self.end_headers()
        self.wfile.write(REPLY)


@pytest.fixture
def plain_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PlainHandler)
    server.received = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _send(server: ThreadingHTTPServer, messages: list[Message], config: GenerationConfig) -> None:
    """One request through OpenAITeacher (its SDK client, aiohttp transport) to the plain server."""
    teacher = OpenAITeacher("m", api_key="none", base_url=f"http://127.0.0.1:{server.server_address[1]}/v1")

    async def go() -> None:
        try:
            await teacher.generate(messages, config)
        finally:
            await teacher.aclose()

    asyncio.run(go())


def test_streamed_body_arrives_byte_identical_under_its_content_length(plain_server):
    image = ImageRef(os.urandom(3 * SLICE), "image/jpeg", 10, 10)  # its part spans several slices
    messages = [Message("system", ["Be brief."]), Message("user", [image, "What is it?", image])]
    config = GenerationConfig(stop=["</answer>"], max_tokens=16, temperature=0.5)
    _send(plain_server, messages, config)
    ((headers, raw),) = plain_server.received
    params = {"temperature": 0.5, "stop": ["</answer>"], "max_tokens": 16}
    assert raw == b"".join(request_chunks("m", messages, params))
    assert headers["content-length"] == str(len(raw)) and "transfer-encoding" not in headers


def test_a_request_in_flight_holds_no_copy_of_its_body(plain_server):
    """Traced memory peaks at the server's own copy of the body (it reads it whole) plus a few slices: the client
    holds no joined copy of its own, nor a socket buffer of all the server has not read yet (either doubles it)."""
    image = ImageRef(os.urandom(16 << 20), "image/jpeg", 10, 10)  # large beside the SDK's own allocations
    image.openai_part  # noqa: B018 (built before tracing: shared by every request, as a run prepares it)
    messages = [Message("user", [image, "What is it?"])]
    body_size = len(image.openai_part)
    tracemalloc.start()
    try:
        _send(plain_server, messages, GenerationConfig(max_tokens=16))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(plain_server.received[0][1]) > body_size
    assert peak < 1.5 * body_size, f"peak {peak / 2**20:.1f} MiB for a {body_size / 2**20:.1f} MiB body"
