"""What our teacher layer (round robin, breaker, buckets, budget, retries, pricing) costs over the bare SDK.

Runs N requests at concurrency C against a zero-latency loopback teacher, each carrying one image,
once through the SDK alone and once through `make_teacher(...)`, and prints requests/s and the ratio.

    .venv/bin/python bench/teacher_overhead.py --requests 1000 --concurrency 64 --image-kb 200
    .venv/bin/python bench/teacher_overhead.py --smoke          # tiny sizes: proves the bench runs
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from loopback_teacher import LoopbackTeacher, fast_teacher
from smoke import parse_args

from minio3_data.teachers import GenerationConfig, ImageRef, Message
from minio3_data.teachers.gemini import gemini_content


def plain_openai_messages(messages: list[Message]) -> list[dict]:
    """What a plain SDK user sends: content lists with data URLs, re-encoded into JSON on every request."""
    return [
        {"role": m.role, "content": [
            {"type": "text", "text": p} if isinstance(p, str)
            else {"type": "image_url", "image_url": {"url": f"data:{p.mime};base64,{p.b64}"}}
            for p in m.parts
        ]}
        for m in messages
    ]

CONFIG = GenerationConfig(stop=["</grounding>", "</answer>"], max_tokens=256)


async def _rate(n: int, concurrency: int, call: Callable[[], Awaitable[object]]) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await call()

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - start)


async def bench(api: str, srv: LoopbackTeacher, messages: list[Message], n: int, c: int) -> tuple[float, float]:
    guarded = fast_teacher(api, srv, timeout=60)
    if api == "openai":
        from openai import AsyncOpenAI

        client = AsyncOpenAI(api_key="EMPTY", base_url=srv.openai_url, max_retries=0, timeout=60)

        async def bare() -> object:
            return await client.chat.completions.create(
                model="m", messages=plain_openai_messages(messages), max_tokens=256, stop=list(CONFIG.stop)
            )

        close = client.close
    else:
        from google import genai
        from google.genai import types

        gclient = genai.Client(api_key="EMPTY", http_options=types.HttpOptions(base_url=srv.url, api_version="v1beta"))
        gconfig = types.GenerateContentConfig(max_output_tokens=256, stop_sequences=list(CONFIG.stop))

        async def bare() -> object:
            contents = [gemini_content(m) for m in messages]
            return await gclient.aio.models.generate_content(model="m", contents=contents, config=gconfig)

        close = gclient.aio.aclose
    await bare()  # warm up connections and lazy imports
    await guarded.generate(messages, CONFIG)
    raw = await _rate(n, c, bare)
    ours = await _rate(n, c, lambda: guarded.generate(messages, CONFIG))
    await close()
    await guarded.aclose()
    return raw, ours


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--image-kb", type=int, default=200)
    args = parse_args(ap, requests=16, concurrency=4, image_kb=16)
    image = ImageRef(os.urandom(args.image_kb * 1024), "image/jpeg", 1000, 1000)
    messages = [Message("user", [image, "What colour is the car?"])]
    with LoopbackTeacher(record=False) as srv:
        for api in ("openai", "gemini"):
            raw, ours = asyncio.run(bench(api, srv, messages, args.requests, args.concurrency))
            print(f"{api:7s} bare SDK {raw:7.1f} req/s   guarded {ours:7.1f} req/s   ratio {ours / raw:.2f}")


if __name__ == "__main__":
    main()
