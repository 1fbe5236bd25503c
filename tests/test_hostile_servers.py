"""Server data is input: hard bounds on what a teacher (or judge) server can make a run wait for, read or store.

Each test plays a hostile loopback server: a Retry-After of a day, a body that drips, a reply far beyond
max_tokens, junk usage, nothing listening, a 200 that is no reply, a judge on a server of its own."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loopback_teacher import (
    Fault,
    LoopbackTeacher,
    NothingListening,
    ask,
    fast_teacher,
    loopback_fixture,  # noqa: F401 (`loopback`)
    zoom_then_answer,
)

from minio3_data.errors import BadInputError
from minio3_data.records import read_items
from minio3_data.teacher_options import TeacherOptions
from minio3_data.teachers import GenerationConfig, Message, RetryPolicy, TeacherError, TeacherUnavailable
from minio3_data.teachers.bounds import reply_cap
from minio3_data.teachers.pricing import table_price
from minio3_data.teachers.resilience import RequestError, call_with_retries
from minio3_data.teachers.usage import USAGE_UNKNOWN
from pipelines.synth_coldstart import SynthConfig, synth_coldstart
from pipelines.synth_coldstart.merge import merge_runs

ROOT = Path(__file__).resolve().parents[1]
CONFIG = GenerationConfig(stop=["</grounding>", "</answer>"], max_tokens=64)
QUESTION = [Message("user", ["What colour is the car?"])]
APIS = ["openai", "gemini"]
HANG = 20  # seconds: where the client had no bound, the test stops waiting here


def _call(teacher, n: int = 1):
    """n generate calls, then close the teacher; given up after HANG s, so that a client without bounds fails
    the test instead of hanging it."""
    return asyncio.wait_for(ask(teacher, QUESTION, CONFIG, n), HANG)


# --- waits -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_a_retry_after_beyond_backoff_max_fails_at_once_naming_the_demand(loopback: LoopbackTeacher, api: str):
    loopback.inject(Fault.rate_limited(retry_after=99999))
    start = time.monotonic()
    with pytest.raises(TeacherError, match=r"HTTP 429.*asks to wait 99999 s, longer than --backoff-max 5 s"):
        asyncio.run(_call(fast_teacher(api, loopback, backoff_max=5)))
    assert time.monotonic() - start < 10 and loopback.count == 1  # not 28 hours


def test_a_wait_over_ten_seconds_prints_a_line():
    failures = [RequestError("http://x/v1", "HTTP 503", status=503, retry_after=s) for s in (12, 3)]
    slept: list[float] = []
    notices: list[str] = []

    async def attempt() -> str:
        if failures:
            raise failures.pop(0)
        return "ok"

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result = asyncio.run(call_with_retries(attempt, RetryPolicy(base_delay=0.001, max_delay=60), sleep=sleep,
                                           notify=notices.append))
    assert result == "ok" and slept == [12, 3]
    assert notices == ["http://x/v1: HTTP 503; waiting 12 s before retry 1/6"]  # the 3 s wait is silent


@pytest.mark.parametrize("api", APIS)
def test_timeout_is_a_deadline_for_the_whole_reply(loopback: LoopbackTeacher, api: str):
    """A body that drips 16 bytes every 0.2 s never lets a read time out; the deadline ends it at 0.5 s."""
    loopback.inject(Fault.dripping(0.2), times=2)
    start = time.monotonic()
    with pytest.raises(TeacherError, match=r"no reply within 0.5 s \(gave up after 2 tries\)"):
        asyncio.run(_call(fast_teacher(api, loopback, timeout=0.5, max_retries=1)))
    assert time.monotonic() - start < 5  # two tries of 0.5 s, not two bodies of 5-6 s each


# --- sizes and contents ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_a_reply_far_beyond_max_tokens_fails_unread_and_counted(loopback: LoopbackTeacher, api: str):
    loopback.inject(Fault.oversize(5_000_000))
    teacher = fast_teacher(api, loopback)
    cap = reply_cap(CONFIG.max_tokens)
    assert cap == 64 * 1024 + 64 * 64
    with pytest.raises(TeacherError, match=rf"reply over {cap:,} bytes for max_tokens 64"):
        asyncio.run(_call(teacher))
    assert loopback.count == 1 and teacher.usage.requests == 1  # not retried (it would pay again), but counted


@pytest.mark.parametrize(
    ("api", "usage"),
    [("openai", {"prompt_tokens": "many", "completion_tokens": 3}), ("openai", "junk"),
     ("openai", {"prompt_tokens": 10, "completion_tokens": 1e30}), ("openai", {"completion_tokens": -4}),
     ("gemini", {"promptTokenCount": "many", "candidatesTokenCount": 3}), ("gemini", ["junk"])],
)  # fmt: skip
def test_junk_usage_is_unknown_and_the_reply_kept(loopback: LoopbackTeacher, api: str, usage):
    loopback.inject(Fault.junk_usage(usage), times=2)
    notices: list[str] = []
    replies = asyncio.run(_call(fast_teacher(api, loopback, notify=notices.append), 2))
    assert all("</grounding>" in r.text and r.usage.total_tokens == 0 and r.usage.cost_usd == 0 for r in replies)
    assert all(r.extra[USAGE_UNKNOWN] and r.usage.requests == 1 for r in replies)
    assert loopback.count == 2  # kept, not retried
    assert len(notices) == 1 and "unreadable usage" in notices[0] and loopback.url in notices[0]  # once per teacher


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("body", [b"<!doctype html><html>Hi</html>", b'"hello"', b'{"candidates": "x", "choices": "x"}'])
def test_a_200_that_is_no_reply_is_that_servers_failure(api: str, body: bytes):
    with LoopbackTeacher() as good, LoopbackTeacher() as bad:
        bad.inject(Fault(body=body))
        teacher = fast_teacher(api, bad, good, max_retries=0)
        with pytest.raises(TeacherError, match=rf"^{bad.url}(/v1)?: unreadable reply"):
            asyncio.run(_call(teacher))
        assert [b.failures for b in teacher.breakers] == [1, 0]  # counted against the server that sent it


# --- nothing listening -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_a_refused_connection_before_any_success_stops_at_once(api: str):
    down = NothingListening()
    start = time.monotonic()
    with pytest.raises(TeacherUnavailable, match=rf"^connection refused at {down.url}(/v1)?; is the server running"):
        asyncio.run(_call(fast_teacher(api, down, max_retries=6, backoff_base=1.0, backoff_max=60)))
    assert time.monotonic() - start < 10  # not six back-offs of up to a minute


def test_a_refused_connection_after_a_success_is_retried_as_what_it_is(loopback: LoopbackTeacher):
    down = NothingListening()
    teacher = fast_teacher("openai", loopback, down, max_retries=0)  # round robin: the live server first
    with pytest.raises(TeacherError, match=rf"^{down.openai_url}: connection refused \(gave up after 1 try\)"):
        asyncio.run(_call(teacher, 2))


# --- whole runs --------------------------------------------------------------------------------------------------


def _answers(dataset: Path) -> dict[str, str]:
    return {it.question: it.answer for it in read_items(dataset / "train.parquet")}


def _cfg(dataset: Path, out: Path, srv: LoopbackTeacher, **kw) -> SynthConfig:
    base = dict(dataset=dataset, out=out, teacher="openai", target=None, samples_per_item=1, concurrency=1,
                progress=False, limit=3,
                client=TeacherOptions(model="served-vl", base_urls=[srv.openai_url], api_key_env="NONE", timeout=5,
                                      backoff_base=0.001))
    return SynthConfig(**(base | kw))


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_an_oversize_reply_in_a_run_is_a_counted_failure_never_stored(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:
        srv.inject(Fault.oversize(3_000_000))
        summary = synth_coldstart(_cfg(tiny_dataset, run, srv))
        sent = srv.count
    assert summary.sampling.crashed is None and list(summary.sampling.failures) == [
        f"{srv.openai_url}: reply over {reply_cap(2048):,} bytes for max_tokens 2048: not read further"
    ]
    stats = json.loads((run / "stats.json").read_text())
    assert stats["failed"] == 1 and stats["usage"]["requests"] == sent  # the failed request is counted
    assert sum(f.stat().st_size for f in run.glob("*.jsonl")) < 100_000  # not a byte of it in the logs


def test_junk_usage_in_a_run_keeps_the_reply(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:
        srv.inject(Fault.junk_usage({"prompt_tokens": "lots", "completion_tokens": None}))
        summary = synth_coldstart(_cfg(tiny_dataset, run, srv))
        sent = srv.count
    assert summary.sampling.crashed is None and summary.sampling.failures == {} and summary.kept == 3
    stats = json.loads((run / "stats.json").read_text())
    assert stats["usage"]["requests"] == sent and stats["usage_unknown"] == 1
    assert sum(USAGE_UNKNOWN in (r.get("extra") or {}) for r in _lines(run / "replies.jsonl")) == 1


def test_a_server_that_is_not_running_stops_the_cli_within_seconds(tiny_dataset, tmp_path):
    down = NothingListening()
    cmd = [sys.executable, "-m", "cli", "synth-coldstart", "--dataset", str(tiny_dataset), "--out",
           str(tmp_path / "run"), "--teacher", "openai", "--model", "served-vl", "--base-url", down.openai_url,
           "--api-key-env", "NONE"]
    start = time.monotonic()
    res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=150)
    elapsed = time.monotonic() - start
    assert res.returncode == 1 and "Traceback" not in res.stderr
    # why it stopped is an error line, on stderr with the others
    assert f"stopped: connection refused at {down.openai_url}; is the server running?" in res.stderr
    assert "stopped" not in res.stdout
    assert elapsed < 30  # was 66-91 s of back-off per attempt, then "no reply within 120 s"


def _grader(view) -> str:
    return "Score: 1"


def _wrong_teacher() -> LoopbackTeacher:
    """A teacher whose answers the rule judge cannot accept, so the LLM judge is asked about each."""
    return LoopbackTeacher(zoom_then_answer({}, fallback="the one nearest the middle"))


def test_a_judge_on_its_own_server_is_counted_and_priced_beside_the_teacher(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    with _wrong_teacher() as teacher, LoopbackTeacher(_grader) as judge:
        cfg = _cfg(tiny_dataset, run, teacher, judge="openai:gpt-4o", judge_base_urls=[judge.openai_url],
                   judge_api_key_env="NONE")
        summary = synth_coldstart(cfg)
        assert summary.kept == 3 and judge.count == 3 and all(r.view.model == "gpt-4o" for r in judge.requests)
        stats = json.loads((run / "stats.json").read_text())
        assert stats["usage"]["requests"] == teacher.count  # the teacher's requests only
        used = stats["judge_usage"]
        assert used["requests"] == judge.count and used["prompt_tokens"] > 0
        price_in, price_out = table_price("gpt-4o")  # type: ignore[misc]
        assert used["cost_usd"] == pytest.approx(
            (used["prompt_tokens"] * price_in + used["completion_tokens"] * price_out) / 1e6, abs=1e-6)
        synth_coldstart(cfg)  # a resume asks nothing new and keeps what the judge was paid
        assert judge.count == 3 and json.loads((run / "stats.json").read_text())["judge_usage"] == used


def test_a_merge_counts_what_the_judge_of_every_shard_was_paid(tiny_dataset, tmp_path):
    shards = [tmp_path / "s0", tmp_path / "s1"]
    with _wrong_teacher() as teacher, LoopbackTeacher(_grader) as judge:
        for i, shard in enumerate(shards):
            synth_coldstart(_cfg(tiny_dataset, shard, teacher, shard=(i, 2), judge="openai:gpt-4o",
                                 judge_base_urls=[judge.openai_url], judge_api_key_env="NONE"))
    paid = [json.loads((shard / "stats.json").read_text())["judge_usage"] for shard in shards]
    merge_runs(shards, tmp_path / "merged")
    merged = json.loads((tmp_path / "merged" / "stats.json").read_text())
    assert merged["judge_usage"]["requests"] == judge.count == sum(p["requests"] for p in paid) > 0
    assert merged["judge_usage"]["cost_usd"] == pytest.approx(sum(p["cost_usd"] for p in paid), abs=1e-6)
    assert merged["usage_unknown"] == 0


def test_a_judge_server_that_is_down_is_named_as_the_judge(tiny_dataset, tmp_path):
    down = NothingListening()
    with _wrong_teacher() as teacher:
        summary = synth_coldstart(_cfg(tiny_dataset, tmp_path / "run", teacher, judge="openai:gpt-4o",
                                       judge_base_urls=[down.openai_url], judge_api_key_env="NONE"))
    assert summary.sampling.stopped == (
        f"judge openai:gpt-4o: connection refused at {down.openai_url}; is the server running?"
    )


def test_an_llm_judge_without_a_base_url_never_goes_to_the_policy_server(tiny_dataset, tmp_path, monkeypatch):
    """`minio3 eval --help`'s example: a local policy server, no key, `--judge openai:gpt-4o`. The judge is
    OpenAI's with its key, not gpt-4o asked of the policy's server with the policy's (absent) key."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with _wrong_teacher() as teacher:
        with pytest.raises(BadInputError, match="OPENAI_API_KEY is not set"):
            synth_coldstart(_cfg(tiny_dataset, tmp_path / "run", teacher, judge="openai:gpt-4o"))
        assert all(r.view.model != "gpt-4o" for r in teacher.requests)
