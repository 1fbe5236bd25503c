"""One Gemini endpoint through google-genai's async client (the Google API, or a proxy via base URL).

One request per `generate`, SDK retries off (`retry_options` unset means exactly one attempt).
The client is pinned to an httpx2 connection pool of our own, so the exceptions to translate do not
depend on whether aiohttp happens to be installed, and so its replies are capped (bounds.py); `--timeout`
is the whole request's deadline. The reply body is read here, not by the SDK, so that junk usage makes the
usage unknown instead of failing the reply. The model's reply parts (with any thought signatures) travel
in `Reply.extra` and are echoed back verbatim when that turn is re-sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from ..protocol import restore_stop
from ..records import Usage
from .base import GenerationConfig, ImageRef, Message, Reply
from .bounds import bounded, cap_replies
from .resilience import RequestError
from .usage import read_usage, token_count

PARTS_KEY = "gemini_parts"  # Message.extra / Reply.extra key holding the model's raw parts (JSON-ready)
FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length"}


def _visible_text(parts: list[dict[str, Any]]) -> str:
    return "".join(p.get("text", "") for p in parts if not p.get("thought"))


def gemini_content(message: Message) -> types.Content:
    """A user or model Content; a model turn that came from Gemini re-sends its original parts."""
    role = "model" if message.role == "assistant" else "user"
    raw = message.extra.get(PARTS_KEY)
    if role == "model" and raw:
        sent = _visible_text(raw)
        if message.text.startswith(sent):  # the turn as stored = original parts + the re-appended stop string
            parts = [types.Part.model_validate(p) for p in raw]
            if len(message.text) > len(sent):
                parts.append(types.Part(text=message.text[len(sent):]))
            return types.Content(role=role, parts=parts)
    parts = [
        types.Part(text=p) if isinstance(p, str) else types.Part(inline_data=types.Blob(data=p.data, mime_type=p.mime))
        for p in message.parts
    ]
    return types.Content(role=role, parts=parts)


class GeminiTeacher:
    """An `Endpoint` for one Gemini base URL (None = Google's) with its own client."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 120.0,
        api_version: str | None = None,
        thinking_budget: int | None = None,
    ):
        self.model = model
        self.name = f"gemini:{model}"
        self.endpoint = (base_url or "https://generativelanguage.googleapis.com").rstrip("/")
        self.timeout = timeout
        self.thinking_budget = thinking_budget
        self._http = httpx2.AsyncClient(limits=httpx2.Limits(max_connections=1000, max_keepalive_connections=100),
                                        event_hooks={"response": [cap_replies]})
        self._client = genai.Client(
            api_key=api_key,
            vertexai=False,
            http_options=types.HttpOptions(
                base_url=base_url, api_version=api_version, timeout=int(timeout * 1000), httpx_async_client=self._http
            ),
        )

    def __repr__(self) -> str:
        return f"GeminiTeacher(model={self.model!r}, endpoint={self.endpoint!r})"

    def prepare_image(self, ref: ImageRef) -> None:
        """Nothing to build ahead: google-genai encodes inline image bytes itself, per request."""

    def _config(self, system: str, config: GenerationConfig) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(
            should_return_http_response=True,  # the raw body: read by `_reply`
            system_instruction=system or None,
            temperature=config.temperature,
            max_output_tokens=config.max_tokens,
            stop_sequences=list(config.stop) or None,
            seed=config.seed,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),  # no tools here
            thinking_config=(
                types.ThinkingConfig(thinking_budget=self.thinking_budget) if self.thinking_budget is not None else None
            ),
        )

    async def generate(self, messages: list[Message], config: GenerationConfig) -> Reply:
        system = "\n\n".join(m.text for m in messages if m.role == "system")
        contents = [gemini_content(m) for m in messages if m.role != "system"]
        try:
            async with bounded(self.endpoint, self.timeout, config.max_tokens):
                resp = await self._client.aio.models.generate_content(
                    model=self.model, contents=contents, config=self._config(system, config)
                )
        except genai_errors.APIError as e:
            headers = getattr(e.response, "headers", None) or {}
            raise RequestError.from_status(self.endpoint, int(e.code or 0), headers, e.message or "") from None
        except httpx2.TimeoutException:
            raise RequestError(self.endpoint, f"no reply within {self.timeout:g} s") from None
        except httpx2.TransportError as e:
            raise RequestError.connection(self.endpoint, e) from None
        try:
            return _reply(json.loads(resp.sdk_http_response.body or "{}"))
        except (ValueError, TypeError, AttributeError) as e:  # not JSON or not a reply (pydantic raises ValueErrors)
            raise RequestError(self.endpoint, f"unreadable reply ({e.__class__.__name__})") from None

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        await self._http.aclose()


def _reply(data: dict[str, Any]) -> Reply:
    """A generateContent JSON reply, read as the SDK reads it (`_from_response`: its models, minus fields they do
    not know) except for its usage, read apart so that junk there leaves the reply whole; ValueError or
    TypeError when the body is no reply."""
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    extra: dict[str, Any] = {}
    usage = read_usage(data.pop("usageMetadata", None), _usage, extra)
    resp = types.GenerateContentResponse._from_response(response=data, kwargs={})
    if not resp.candidates:
        return Reply(text="", usage=usage, finish_reason="blocked", extra=extra)
    cand = resp.candidates[0]
    reason = cand.finish_reason.name if cand.finish_reason else "STOP"
    finish = FINISH_REASONS.get(reason, reason.lower())
    raw = [p.model_dump(mode="json", exclude_none=True) for p in (cand.content.parts or [])] if cand.content else []
    text = _visible_text(raw)
    if finish == "stop":
        text = restore_stop(text)
    if raw:
        extra[PARTS_KEY] = raw
    return Reply(text=text, usage=usage, finish_reason=finish, extra=extra)


def _usage(raw: dict[str, Any]) -> Usage:
    """usageMetadata read by the SDK's model (both spellings of its fields), each count checked."""
    meta = types.GenerateContentResponseUsageMetadata._from_response(response=raw, kwargs={})
    return Usage(prompt_tokens=token_count(meta.prompt_token_count),
                 completion_tokens=token_count(meta.candidates_token_count),
                 thought_tokens=token_count(meta.thoughts_token_count))
