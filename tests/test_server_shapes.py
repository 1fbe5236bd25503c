"""The teacher client against servers shaped like the ones users run, not like our own: a plain
Content-Length-only HTTP/1.1 server with mild faults, FastAPI-shaped errors, a server that fails on `stop`,
and a wrong model name. Each run goes through the real CLI or the real pipeline over loopback HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from loopback_teacher import Fault, LoopbackTeacher, fast_teacher, loopback_fixture  # noqa: F401

from minio3_data.judge import make_judge
from minio3_data.records import read_items
from minio3_data.teacher_options import TeacherOptions
from pipelines.synth_coldstart import SynthConfig, synth_coldstart

ROOT = Path(__file__).resolve().parents[1]


def _answers(dataset: Path) -> dict[str, str]:
    return {it.question: it.answer for it in read_items(dataset / "train.parquet")}


def _synth(dataset: Path, out: Path, srv: LoopbackTeacher, *extra: str) -> subprocess.CompletedProcess[str]:
    """The real CLI against `srv`, as a user would run it (no key: a local server)."""
    cmd = [sys.executable, "-m", "cli", "synth-coldstart", "--dataset", str(dataset), "--out", str(out),
           "--teacher", "openai", "--model", "served-vl", "--base-url", srv.openai_url, "--api-key-env", "NONE",
           "--target", "1000", "--samples-per-item", "1", "--concurrency", "4", "--timeout", "5", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _attempts(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "attempts.jsonl").read_text().splitlines()]


def test_plain_content_length_server_with_mild_faults_loses_nothing(tiny_dataset, tmp_path):
    """http.server reads Content-Length only: a chunked upload would make it read the rest of the body as the
    next request ('400 Bad status line'). With 429s, 500s, slow and garbage replies every attempt finishes."""
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:
        srv.inject_every(10, Fault.rate_limited(retry_after=0.01))
        srv.inject_every(20, Fault.server_error(500))
        srv.inject_every(33, Fault.slow(0.3))
        srv.inject_every(19, Fault.broken_body())
        cfg = SynthConfig(dataset=tiny_dataset, out=tmp_path / "run", teacher="openai", target=None,
                          samples_per_item=3, concurrency=8, progress=False,
                          client=TeacherOptions(model="served-vl", base_urls=[srv.openai_url], api_key_env="NONE",
                                                timeout=5, backoff_base=0.01))
        summary = synth_coldstart(cfg)
        assert all("transfer-encoding" not in r.headers for r in srv.requests)
    assert summary.sampling.failures == {} and summary.sampling.failure_line() is None
    assert summary.attempts == 30 and {a["status"] for a in _attempts(tmp_path / "run")} <= {"answered"}
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["usage"]["requests"] == srv.count  # retried requests included


def test_wrong_model_on_a_fastapi_server_stops_at_once_with_its_message(tiny_dataset, tmp_path):
    with LoopbackTeacher(error_shape="fastapi", served_models={"the-real-one"}) as srv:
        res = _synth(tiny_dataset, tmp_path / "run", srv)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert "The model `served-vl` does not exist." in res.stdout + res.stderr  # FastAPI's {"detail": ...}
    assert srv.count <= 4 + 2  # 4 in flight, 2 more before the third refusal: not every item in turn


def test_server_failing_on_stop_fails_fast_with_a_hint_then_works_with_stop_at_client(tiny_dataset, tmp_path):
    with LoopbackTeacher(answers=_answers(tiny_dataset), error_shape="fastapi", fail_on_stop=True) as srv:
        start = time.monotonic()
        res = _synth(tiny_dataset, tmp_path / "run", srv, "--concurrency", "1")
        elapsed = time.monotonic() - start
        assert res.returncode == 1 and "Traceback" not in res.stderr
        assert "HTTP 500 (Internal Server Error) on each of the first 3 requests" in res.stdout + res.stderr
        assert "--stop-at client" in res.stdout + res.stderr
        assert srv.count == 3 and elapsed < 20  # not 7 tries and 3 breaker pauses per attempt
        srv.requests.clear()
        res = _synth(tiny_dataset, tmp_path / "run", srv, "--stop-at", "client")
        assert res.returncode == 0, res.stdout + res.stderr
        assert all("stop" not in r.body for r in srv.requests)
    done = _attempts(tmp_path / "run")
    answered = [a for a in done if a["status"] == "answered"]
    assert len(answered) == 10
    # turns end at their first closing tag, exactly as a server applying `stop` would have ended them
    assert all(t["text"].endswith(("</grounding>", "</answer>")) for a in answered for t in a["turns"])


def test_most_attempts_failing_for_one_reason_exits_non_zero_naming_it(tiny_dataset, tmp_path):
    """After the server has served, a 400 on every answer turn fails those attempts: the run says how many,
    why, and exits 1; the failed attempts keep their paid first turns, and stats count every request."""
    with LoopbackTeacher(answers=_answers(tiny_dataset), error_shape="fastapi") as srv:
        srv.inject_every(2, Fault.bad_request("prompt is too long for this server"))
        res = _synth(tiny_dataset, tmp_path / "run", srv, "--concurrency", "1")
        sent = srv.count
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "10 of 10 attempts failed: " in res.stderr and "prompt is too long for this server" in res.stderr
    assert "rerun the same command to retry them" in res.stderr
    failed = _attempts(tmp_path / "run")
    assert all(a["status"] == "failed" and a["num_turns"] == 1 and a["usage"]["requests"] == 2 for a in failed)
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["usage"]["requests"] == sent == 20
    assert list(stats["failure_reasons"].values()) == [10]
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:  # the server is fixed: resume
        res = _synth(tiny_dataset, tmp_path / "run", srv)
        assert res.returncode == 0, res.stderr
        assert srv.count == 10  # only the answer turns: the paid zoom turns replay from the cache
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["usage"]["requests"] == 30 and stats["failed"] == 0  # every request made, counted once


def test_unexpected_error_stops_the_run_naming_the_item(tiny_dataset, tmp_path, monkeypatch):
    """A bug is not a failed request: the run stops, names the item, and keeps the attempt for a rerun."""
    import pipelines.sampling.engine as synth

    real = synth.run_attempt

    async def buggy(ctx, item, sample_index, state):
        if sample_index == 1:
            raise KeyError("boom")
        return await real(ctx, item, sample_index, state)

    monkeypatch.setattr(synth, "run_attempt", buggy)
    summary = synth_coldstart(SynthConfig(dataset=tiny_dataset, out=tmp_path / "run", target=None, concurrency=1,
                                          progress=False, limit=2))
    outcome = summary.sampling
    assert outcome.crashed and outcome.crashed.startswith("item ") and "sample 1" in outcome.crashed
    assert "KeyError" in outcome.crashed and outcome.stopped == outcome.crashed
    assert outcome.attempted_now == 2  # it stopped at the crash instead of walking every item


def test_judge_on_the_teachers_server_shares_its_limits(loopback: LoopbackTeacher):
    teacher = fast_teacher("openai", loopback, rpm=100)
    same = make_judge("openai:judge-model", share_with=teacher, base_urls=[loopback.openai_url],
                      api_key_env="NONE")
    other = make_judge("openai:judge-model", share_with=teacher, base_urls=["http://127.0.0.1:9/v1"],
                       api_key_env="NONE")
    assert same.teacher.limiter is teacher.limiter and same.teacher.breakers is teacher.breakers
    assert same.teacher.budget is teacher.budget
    assert other.teacher.limiter is not teacher.limiter and other.teacher.budget is teacher.budget

    async def close() -> None:
        for t in (teacher, same, other):
            await t.aclose()

    asyncio.run(close())


def test_no_price_warning_for_a_local_server(loopback: LoopbackTeacher, caplog):
    with caplog.at_level(logging.WARNING, logger="minio3.teachers"):
        teacher = fast_teacher("openai", loopback, model="my-local-qwen-for-shapes")
    asyncio.run(teacher.aclose())
    assert "no price known" not in caplog.text


def test_every_teacher_default_is_defined_once():
    """The CLI's defaults are TeacherOptions' defaults (one definition), and both commands that talk to a model
    take the bounds on its waits (--timeout, the whole request's deadline, and --backoff-max)."""
    import typer.main

    import cli

    for name in ("synth-coldstart", "eval"):
        command = typer.main.get_command(cli.app).commands[name]  # type: ignore[attr-defined]
        defaults = {p.name: p.default for p in command.params}
        assert {"timeout", "backoff_max", "max_retries"} <= set(defaults), name
        for f in dataclasses.fields(TeacherOptions):
            if f.name in defaults and f.default is not dataclasses.MISSING:
                assert defaults[f.name] == f.default, f.name
