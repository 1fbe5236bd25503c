"""The OpenAI request body is spliced from cached fragments; it must equal a plain JSON encode."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minio3_data.teachers.base import ImageRef, Message
from minio3_data.teachers.openai_compat import request_chunks

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
