"""OpenAI and Gemini teachers against a real loopback server: requests, replies, usage, images, keys."""

from __future__ import annotations

import asyncio
import base64
import logging

import pytest
from loopback_teacher import Fault, LoopbackTeacher, fast_teacher, loopback_fixture  # noqa: F401 (`loopback`)

from minio3_data.errors import BadInputError
from minio3_data.profiles import get_profile
from minio3_data.protocol import Malformed, Zoom
from minio3_data.records import Usage
from minio3_data.teachers import (
    GenerationConfig,
    ImageRef,
    Message,
    TeacherError,
    TeacherUnavailable,
    make_teacher,
)
from minio3_data.teachers import base as teacher_base
from minio3_data.teachers.pricing import Price, price_for, table_price

STOP = GenerationConfig(stop=["</grounding>", "</answer>"], max_tokens=256, seed=7)
FAKE_KEY = "sk-loopback-Zq81xTR0-DO-NOT-LEAK"
parse_turn = get_profile("minio3").parse_turn
APIS = ["openai", "gemini"]


def _image(tag: bytes) -> ImageRef:
    return ImageRef(b"\xff\xd8fake-jpeg-" + tag, "image/jpeg", 64, 48)


def _question(*images: ImageRef, text: str = "What colour is the car?") -> list[Message]:
    return [Message("system", ["You zoom."]), Message("user", [*images, text])]


def run(coro):
    return asyncio.run(coro)


async def _generate(teacher, messages, config=STOP):
    try:
        return await teacher.generate(messages, config)
    finally:
        await teacher.aclose()


def test_openai_clean_call(loopback: LoopbackTeacher):
    loopback.thought_tokens, loopback.reasoning = 5, "hidden chain of thought"
    img = _image(b"1")
    reply = run(_generate(fast_teacher("openai", loopback), _question(img)))
    assert reply.text.endswith("</grounding>")  # the server cut the stop string; the teacher re-appended it
    assert isinstance(parse_turn(reply.text), Zoom)
    assert reply.finish_reason == "stop"
    assert "hidden chain" not in reply.text and reply.extra["reasoning"] == "hidden chain of thought"
    assert reply.usage.prompt_tokens > 100 and reply.usage.thought_tokens == 5
    assert reply.usage.completion_tokens == len(reply.text.removesuffix("</grounding>")) // 4
    assert reply.usage.requests == 1
    (req,) = loopback.requests
    assert req.path == "/v1/chat/completions"
    assert req.body["model"] == "loopback-model" and req.body["stop"] == ["</grounding>", "</answer>"]
    assert req.body["max_tokens"] == 256 and req.body["seed"] == 7
    user = req.body["messages"][1]["content"]
    assert user[0] == {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + img.b64}}
    assert req.view is not None and req.view.images() == [img.data]


def test_gemini_clean_call(loopback: LoopbackTeacher):
    loopback.thought_tokens = 11
    img = _image(b"1")
    teacher = fast_teacher("gemini", loopback, model="gemini-2.5-flash", thinking_budget=128)
    reply = run(_generate(teacher, _question(img)))
    assert reply.text.endswith("</grounding>") and isinstance(parse_turn(reply.text), Zoom)
    assert reply.usage.thought_tokens == 11  # usageMetadata.thoughtsTokenCount
    usage = reply.usage
    assert usage.cost_usd == pytest.approx(
        (usage.prompt_tokens * 0.30 + (usage.completion_tokens + usage.thought_tokens) * 2.50) / 1e6
    )
    (req,) = loopback.requests
    assert req.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    gen = req.body["generationConfig"]
    assert gen["stopSequences"] == ["</grounding>", "</answer>"] and gen["maxOutputTokens"] == 256
    thinking = gen["thinkingConfig"]
    assert thinking.get("thinkingBudget", thinking.get("thinking_budget")) == 128
    assert req.body["systemInstruction"]["parts"] == [{"text": "You zoom."}]
    assert req.view is not None and req.view.images() == [img.data]


@pytest.mark.parametrize("api", APIS)
def test_each_image_sent_once_per_request(loopback: LoopbackTeacher, api: str):
    """Three turns re-send the growing conversation; every image appears exactly once in each request."""
    first, crop = _image(b"first"), _image(b"crop")
    messages = _question(first)

    async def go():
        teacher = fast_teacher(api, loopback)
        try:
            reply = await teacher.generate(messages, STOP)
            messages.append(Message("assistant", [reply.text], extra=reply.extra))
            messages.append(Message("user", ["After the above Action 0, here is Observation 1:\n", crop, "."]))
            reply = await teacher.generate(messages, STOP)
            messages.append(Message("assistant", [reply.text], extra=reply.extra))
            return reply
        finally:
            await teacher.aclose()

    reply = run(go())
    assert "<answer>A</answer>" in reply.text  # the default policy answers on its second turn
    views = [r.view for r in loopback.requests]
    assert [v.images() for v in views] == [[first.data], [first.data, crop.data]]


def test_base64_of_an_image_is_computed_once(loopback: LoopbackTeacher, monkeypatch):
    calls = []

    class CountingBase64:
        @staticmethod
        def b64encode(data: bytes) -> bytes:
            calls.append(len(data))
            return base64.b64encode(data)

    monkeypatch.setattr(teacher_base, "base64", CountingBase64)
    img = _image(b"once")
    messages = _question(img)

    async def go():
        teacher = fast_teacher("openai", loopback)
        try:
            for _ in range(3):
                await teacher.generate(messages, STOP)
        finally:
            await teacher.aclose()

    run(go())
    assert loopback.count == 3 and calls == [len(img.data)]


def test_gemini_echoes_its_parts_with_the_thought_signature(loopback: LoopbackTeacher):
    loopback.thought_signature = base64.b64encode(b"opaque-signature").decode()
    messages = _question(_image(b"1"))

    async def go():
        teacher = fast_teacher("gemini", loopback)
        try:
            reply = await teacher.generate(messages, STOP)
            messages.append(Message("assistant", [reply.text], extra=reply.extra))
            messages.append(Message("user", ["After the above Action 0, here is Observation 1: ."]))
            return reply, await teacher.generate(messages, STOP)
        finally:
            await teacher.aclose()

    first, _ = run(go())
    model_turn = loopback.requests[1].body["contents"][1]
    assert model_turn["role"] == "model"
    signed, suffix = model_turn["parts"]
    assert signed.get("thoughtSignature", signed.get("thought_signature")) == loopback.thought_signature
    assert signed["text"] + suffix["text"] == first.text and suffix["text"] == "</grounding>"


def test_assistant_turn_without_provider_state_is_plain_text(loopback: LoopbackTeacher):
    """Exemplar turns (no `extra`) go as text, for both APIs."""
    turn = '<think>x</think>\n<grounding>{"bbox_2d": [0, 0, 1, 1], "source": "original_image"}</grounding>'
    messages = [*_question(_image(b"1")), Message("assistant", [turn]), Message("user", ["After the above Action 0"])]
    for api in APIS:
        run(_generate(fast_teacher(api, loopback), messages))
    openai_req, gemini_req = loopback.requests
    assert openai_req.body["messages"][2] == {"role": "assistant", "content": turn}
    assert gemini_req.body["contents"][1] == {"role": "model", "parts": [{"text": turn}]}


@pytest.mark.parametrize("api", APIS)
def test_truncated_and_malformed_text_pass_through(loopback: LoopbackTeacher, api: str):
    loopback.inject(Fault.truncated())
    loopback.inject(Fault.malformed())
    messages = _question(_image(b"1"))

    async def go():
        teacher = fast_teacher(api, loopback)
        try:
            return [await teacher.generate(messages, STOP) for _ in range(2)]
        finally:
            await teacher.aclose()

    truncated, malformed = run(go())
    assert truncated.finish_reason == "length"
    assert "</grounding>" not in truncated.text  # a cut-off turn is not completed
    assert isinstance(parse_turn(truncated.text), Malformed)
    assert malformed.finish_reason == "stop" and isinstance(parse_turn(malformed.text), Malformed)
    assert loopback.count == 2  # bad text is the loop's business, not a reason to retry


def test_round_robin_over_two_servers():
    with LoopbackTeacher() as a, LoopbackTeacher() as b:

        async def go():
            teacher = fast_teacher("openai", a, b)
            try:
                await asyncio.gather(*(teacher.generate(_question(), STOP) for _ in range(6)))
            finally:
                await teacher.aclose()

        run(go())
        assert (a.count, b.count) == (3, 3)


def test_openai_learns_reasoning_model_parameters(loopback: LoopbackTeacher):
    """o-series / gpt-5 refuse max_tokens and stop: switch once, then keep the working request shape."""
    loopback.inject(Fault.bad_request("Unsupported parameter: 'max_tokens' is not supported with this model. "
                                      "Use 'max_completion_tokens' instead."))
    loopback.inject(Fault.bad_request("Unsupported parameter: 'stop' is not supported with this model."))

    async def go():
        teacher = fast_teacher("openai", loopback)
        try:
            for _ in range(2):
                await teacher.generate(_question(), STOP)
        finally:
            await teacher.aclose()

    run(go())
    bodies = [r.body for r in loopback.requests]
    assert len(bodies) == 4
    assert "max_tokens" in bodies[0] and "max_completion_tokens" in bodies[1] and "stop" in bodies[1]
    for body in bodies[2:]:
        assert body["max_completion_tokens"] == 256 and "stop" not in body and "max_tokens" not in body


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("MINIO3_NO_SUCH_KEY", raising=False)
    with pytest.raises(BadInputError, match="MINIO3_NO_SUCH_KEY"):
        make_teacher("openai", model="gpt-4o", api_key_env="MINIO3_NO_SUCH_KEY")
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(BadInputError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        make_teacher("gemini", model="gemini-2.5-flash")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "claude", "model": "m"}, "unknown teacher"),
        ({"kind": "openai", "model": None}, "needs --model"),
        ({"kind": "openai", "model": "m", "base_urls": ["localhost:8000"]}, "http:// or https://"),
        ({"kind": "openai", "model": "m", "thinking_budget": 64}, "gemini only"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs, match):
    with pytest.raises(BadInputError, match=match):
        make_teacher(kwargs.pop("kind"), api_key_env="NONE", **kwargs)


def test_no_key_server_gets_placeholder(loopback: LoopbackTeacher):
    run(_generate(fast_teacher("openai", loopback, api_key_env="NONE"), _question()))
    assert loopback.requests[0].headers["authorization"] == "Bearer EMPTY"


@pytest.mark.parametrize("api", APIS)
def test_api_key_never_in_errors_reprs_or_logs(loopback: LoopbackTeacher, api: str, monkeypatch, caplog):
    monkeypatch.setenv("MINIO3_TEST_KEY", FAKE_KEY)
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []

    async def go():
        teacher = fast_teacher(api, loopback, api_key_env="MINIO3_TEST_KEY", max_retries=1, timeout=0.2)
        texts.extend([repr(teacher), *map(repr, teacher.endpoints), str(vars(teacher))])
        try:
            await teacher.generate(_question(_image(b"1")), STOP)
            loopback.inject(Fault.rate_limited(retry_after=0), times=2)
            loopback.inject(Fault.slow(1.0), times=2)
            loopback.inject(Fault(status=401, message=f"Incorrect API key provided: {FAKE_KEY}"))
            for expected in (TeacherError, TeacherError, TeacherUnavailable):
                with pytest.raises(expected) as err:
                    await teacher.generate(_question(), STOP)
                texts.extend([str(err.value), repr(err.value)])
        finally:
            await teacher.aclose()

    run(go())
    sent = [r.headers.get("authorization", "") + r.headers.get("x-goog-api-key", "") for r in loopback.requests]
    assert all(FAKE_KEY in s for s in sent)  # the key did travel, so its absence below means something
    texts.append(caplog.text)
    assert caplog.text  # debug logging really was captured
    assert not [t for t in texts if FAKE_KEY in t]


def test_pricing_table_and_overrides(caplog):
    assert table_price("gpt-4o-mini-2024-07-18") == (0.15, 0.60)  # longest prefix, not gpt-4o
    assert table_price("models/gemini-2.5-flash") == (0.30, 2.50)
    assert table_price("openai/gpt-4o") == (2.50, 10.00) and table_price("my-local-qwen") is None
    assert price_for("gpt-4o") == Price(2.50, 10.00)
    assert price_for("gpt-4o", price_output=20.0) == Price(2.50, 20.0)  # one side overridden, the other kept
    assert price_for("gpt-4o", price_input=1.0, price_output=3.0) == Price(1.0, 3.0)
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=100_000, thought_tokens=100_000)
    assert price_for("gpt-4o").cost(usage) == pytest.approx(2.50 + 0.2 * 10.00)  # thought tokens billed as output
    with caplog.at_level(logging.WARNING):
        assert price_for("my-local-qwen-pricing-test") == Price(0.0, 0.0)
        assert price_for("my-local-qwen-pricing-test") == Price(0.0, 0.0)
    assert caplog.text.count("my-local-qwen-pricing-test") == 1  # warned once, not per call
    with caplog.at_level(logging.WARNING):
        assert price_for("my-other-local-qwen", price_input=0.5, price_output=1.5) == Price(0.5, 1.5)
    assert "my-other-local-qwen" not in caplog.text  # fully overridden: nothing to warn about


def test_openai_bodies_go_whole_with_content_length(loopback: LoopbackTeacher):
    """Every body goes whole with its Content-Length, which a plain HTTP/1.1 server (http.server, small
    proxies) needs: this loopback server reads nothing else, so a chunked upload would break it."""
    img = _image(b"whole")

    async def go() -> list[str]:
        teacher = fast_teacher("openai", loopback)
        try:
            return [(await teacher.generate(_question(img), STOP)).text for _ in range(3)]
        finally:
            await teacher.aclose()

    texts = run(go())
    assert len(set(texts)) == 1 and texts[0].endswith("</grounding>")
    assert all("transfer-encoding" not in r.headers and int(r.headers["content-length"]) > 0
               for r in loopback.requests)
    assert [r.view.images() for r in loopback.requests] == [[img.data]] * 3
