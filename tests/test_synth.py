"""synth-coldstart end to end: scripted and API teachers over real loopback servers, faults, kill and resume."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset
from loopback_teacher import Fault, LoopbackTeacher

from minio3_data.profiles import get_profile
from minio3_data.records import read_items, read_trajectories
from minio3_data.teacher_options import TeacherOptions
from minio3_data.teachers.resilience import BreakerPolicy
from pipelines.synth_coldstart import SynthConfig, synth_coldstart

ROOT = Path(__file__).resolve().parents[1]
TEACHER_FIELDS = {f.name for f in dataclasses.fields(TeacherOptions)}
FAKE_KEY = "sk-synth-Kq77pLx0-NEVER-WRITE-ME"


def _cfg(dataset: Path, out: Path, **kw) -> SynthConfig:
    """A test-sized config; TeacherOptions fields (model, base_urls, timeout, ...) go to its `client`."""
    client = {k: kw.pop(k) for k in list(kw) if k in TEACHER_FIELDS}
    base = dict(dataset=dataset, out=out, target=None, samples_per_item=2, concurrency=4, progress=False, seed=3)
    base.update(kw)
    return SynthConfig(**base, client=TeacherOptions(**client))


def _answers(dataset: Path) -> dict[str, str]:
    return {it.question: it.answer for it in read_items(dataset / "train.parquet")}


def _attempt_keys(run: Path) -> list[tuple[str, int]]:
    rows = [json.loads(x) for x in (run / "attempts.jsonl").read_text().splitlines()]
    return [(r["item_id"], r["sample_index"]) for r in rows if r["status"] != "failed"]


def _final_set(run: Path) -> list[tuple[str, list[str]]]:
    return [(t.id, [tn.text for tn in t.turns]) for t in read_trajectories(run / "trajectories.parquet")]


def test_scripted_run_keeps_only_correct_and_writes_outputs(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    summary = synth_coldstart(_cfg(tiny_dataset, run))
    assert summary.attempts == 20 and summary.sampling.stopped is None
    kept = read_trajectories(run / "trajectories.parquet")
    assert 0 < len(kept) == summary.kept < 20  # the scripted error rate leaves work for the filter
    assert all(t.verdict.correct and t.status == "answered" and t.teacher.startswith("scripted:") for t in kept)
    for t in kept:  # every executed zoom recorded its composed box on the original and its observation number
        zooms = [tn for tn in t.turns if tn.action == "zoom" and not tn.error]
        assert [tn.observation for tn in zooms] == list(range(1, len(zooms) + 1))
        assert all(0 <= tn.box_px[0] < tn.box_px[2] <= t.width for tn in zooms)
        assert t.patterns and len(t.exemplar_ids) == 2
    targets = {it.id: it.target_bbox for it in read_items(tiny_dataset / "train.parquet")}
    for t in kept:  # the scripted teacher answers from a view that shows the target, like the exemplars
        last = [tn.box_px for tn in t.turns if tn.box_px][-1]
        x0, y0, x1, y1 = targets[t.item_id]
        assert last[0] <= x0 and last[1] <= y0 and x1 <= last[2] + 1 and y1 <= last[3] + 1, (t.id, last)
    assert {p for t in kept for p in t.patterns} >= {"depth_first", "backtrack"}
    ds = load_dataset("parquet", data_files=str(run / "trajectories.parquet"), split="train")
    assert len(ds) == len(kept)
    stats = json.loads((run / "stats.json").read_text())
    assert stats["kept"] == len(kept) and set(stats["acceptance_by_difficulty"]) <= {"easy", "medium", "hard"}
    assert (run / "stats.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_is_a_no_op_and_target_stops_early(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    synth_coldstart(_cfg(tiny_dataset, run))
    lines = (run / "attempts.jsonl").read_text()
    again = synth_coldstart(_cfg(tiny_dataset, run))
    assert again.sampling.attempted_now == 0 and (run / "attempts.jsonl").read_text() == lines
    small = synth_coldstart(_cfg(tiny_dataset, tmp_path / "small", target=2, concurrency=1))
    assert small.kept == 2 and small.sampling.stopped and "target" in small.sampling.stopped
    assert small.attempts < 20


def test_resume_refuses_changed_data_options(tiny_dataset, tmp_path):
    from minio3_data.errors import BadInputError

    synth_coldstart(_cfg(tiny_dataset, tmp_path / "run", limit=2))
    with pytest.raises(BadInputError, match="max_turns"):
        synth_coldstart(_cfg(tiny_dataset, tmp_path / "run", limit=2, max_turns=5))


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli", *args]


def test_kill_9_then_resume_gives_the_uninterrupted_result(tiny_dataset, tmp_path):
    common = ["--dataset", str(tiny_dataset), "--samples-per-item", "3", "--seed", "3", "--target", "1000"]
    ref = tmp_path / "ref"
    subprocess.run(_cli("synth-coldstart", *common, "--out", str(ref)), cwd=ROOT, check=True, capture_output=True)

    run = tmp_path / "killed"
    proc = subprocess.Popen(_cli("synth-coldstart", *common, "--out", str(run), "--concurrency", "1"),
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = run / "attempts.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < 4):
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = log.read_text().count("\n")
    assert 4 <= done_before < 30, "the run should have been killed part-way"
    with open(log, "ab") as f:  # as if the kill had landed in the middle of a write
        f.write(b'{"id":"torn","item_id":"x","sample_ind')
    res = subprocess.run(_cli("synth-coldstart", *common, "--out", str(run)), cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "torn last line" in res.stdout
    keys = _attempt_keys(run)
    assert len(keys) == len(set(keys)) == 30  # nothing lost, nothing doubled
    assert _final_set(run) == _final_set(ref)


def test_openai_teacher_over_loopback_and_key_never_written(tiny_dataset, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MINIO3_TEST_KEY", FAKE_KEY)
    run = tmp_path / "run"
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:
        summary = synth_coldstart(_cfg(tiny_dataset, run, teacher="openai", model="loopback-vl",
                                       base_urls=[srv.openai_url], api_key_env="MINIO3_TEST_KEY", timeout=5))
        auth = {r.headers.get("authorization") for r in srv.requests}
    assert auth == {f"Bearer {FAKE_KEY}"}
    assert summary.attempts == 20 and summary.kept == 20  # the loopback teacher zooms then answers correctly
    kept = read_trajectories(run / "trajectories.parquet")
    assert all(t.teacher == "openai:loopback-vl" and t.num_turns == 2 and t.turns[0].box_px for t in kept)
    assert all(t.turns[0].text.endswith("</grounding>") for t in kept)  # stop string re-appended
    for f in run.rglob("*"):
        if f.is_file():
            assert FAKE_KEY.encode() not in f.read_bytes(), f
    assert FAKE_KEY not in caplog.text


def test_gemini_teacher_with_faults_loses_nothing(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("MINIO3_GEMINI_KEY", FAKE_KEY)
    run = tmp_path / "run"
    with LoopbackTeacher(answers=_answers(tiny_dataset), thought_tokens=7) as srv:
        srv.inject(Fault.rate_limited(retry_after=0.2), times=2)
        srv.inject(Fault.server_error(500), times=2)
        srv.inject(Fault.slow(2.0))
        srv.inject(Fault.malformed('<think>hmm</think><grounding>{"bbox_2d": [0.1, nan, 0.2, 0.3]}'))
        srv.inject(Fault.truncated())
        summary = synth_coldstart(_cfg(tiny_dataset, run, teacher="gemini", model="gemini-loopback",
                                       base_urls=[srv.url], api_key_env="MINIO3_GEMINI_KEY", timeout=0.8,
                                       backoff_base=0.01, limit=4, protocol=get_profile("minio3")))
    attempts = [json.loads(x) for x in (run / "attempts.jsonl").read_text().splitlines()]
    assert summary.attempts == 8 and all(a["status"] != "failed" for a in attempts)
    errors = [tn["error"] for a in attempts for tn in a["turns"] if tn["action"] == "malformed"]
    assert len(errors) == 2 and any("finite" in e for e in errors)  # minio3: malformed + truncated -> error turns
    assert sum(a["usage"]["thought_tokens"] for a in attempts) > 0
    for f in run.rglob("*"):
        if f.is_file():
            assert FAKE_KEY.encode() not in f.read_bytes(), f


def test_endpoint_down_pauses_then_stops_and_resume_finishes(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    opts = dict(teacher="openai", model="m", api_key_env="NONE", timeout=1, backoff_base=0.01, max_retries=1,
                limit=3, breaker=BreakerPolicy(threshold=2, cooldown=0.05, max_pauses=1))
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:
        srv.inject_every(1, Fault.server_error(503))
        down = synth_coldstart(_cfg(tiny_dataset, run, base_urls=[srv.openai_url], **opts))
        sent_while_down = srv.count
    assert down.sampling.stopped and "503" in down.sampling.stopped or "failing" in (down.sampling.stopped or "")
    assert sent_while_down < 20  # it stopped instead of burning through the items
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:
        up = synth_coldstart(_cfg(tiny_dataset, run, base_urls=[srv.openai_url], **opts))
    assert up.sampling.stopped is None and up.kept == 6
    assert sorted(set(_attempt_keys(run))) == sorted(_attempt_keys(run))


def test_killed_api_run_replays_paid_turns(tiny_dataset, tmp_path):
    """A resumed attempt answers its already-paid turns from replies.jsonl instead of asking again."""
    run = tmp_path / "run"
    opts = dict(teacher="openai", model="m", api_key_env="NONE", timeout=5, limit=3, samples_per_item=1)
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:
        synth_coldstart(_cfg(tiny_dataset, run, base_urls=[srv.openai_url], **opts))
        first = srv.count
    # simulate a kill after each attempt's first (zoom) turn was paid but before any attempt finished
    replies = [json.loads(x) for x in (run / "replies.jsonl").read_text().splitlines()]
    (run / "replies.jsonl").write_text("".join(json.dumps(r) + "\n" for r in replies if r["key"].split("@")[1][0] == "0"))
    (run / "attempts.jsonl").write_text("")
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:
        again = synth_coldstart(_cfg(tiny_dataset, run, base_urls=[srv.openai_url], **opts))
        assert srv.count == first - 3  # only the answer turns were asked again
    assert again.sampling.cache_hits == 3 and again.kept == 3
    assert pq.read_table(run / "trajectories.parquet").num_rows == 3


def test_sigint_stops_taking_work_writes_stats_and_resumes(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    args = ["--dataset", str(tiny_dataset), "--out", str(run), "--samples-per-item", "4", "--concurrency", "1"]
    with LoopbackTeacher(answers=_answers(tiny_dataset), latency=0.05) as srv:
        api = ["--teacher", "openai", "--model", "m", "--base-url", srv.openai_url, "--api-key-env", "NONE"]
        proc = subprocess.Popen(_cli("synth-coldstart", *args, *api), cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        log = run / "attempts.jsonl"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < 3):
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and "stopped: interrupted" in err
        stats = json.loads((run / "stats.json").read_text())
        assert 3 <= stats["attempts"] < 40 and stats["stopped"] == "interrupted"
        assert pq.read_table(run / "trajectories.parquet").num_rows == stats["kept"]
        res = subprocess.run(_cli("synth-coldstart", *args, *api), cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    keys = _attempt_keys(run)
    assert len(keys) == len(set(keys)) == 40


@pytest.mark.parametrize(
    "kw, message",
    [({"mix": {"backtrak": 1.0}}, "--mix"), ({"samples_per_item": 0}, "--samples-per-item"),
     ({"teacher": "claude"}, "--teacher"), ({"judge": "gpt4"}, "--judge"),
     ({"exemplars": Path("/nonexistent")}, "exemplar")],
)
def test_bad_options_are_one_line_errors_that_leave_no_run_json(tiny_dataset, tmp_path, kw, message):
    from minio3_data.errors import BadInputError

    with pytest.raises(BadInputError, match=message):
        synth_coldstart(_cfg(tiny_dataset, tmp_path / "run", **kw))
    assert not (tmp_path / "run" / "run.json").exists()


def test_merged_shards_equal_the_unsharded_run(tiny_dataset, tmp_path):
    from pipelines.synth_coldstart.merge import merge_runs

    whole = tmp_path / "whole"
    synth_coldstart(_cfg(tiny_dataset, whole))
    shards = [tmp_path / f"s{i}" for i in range(3)]
    for i, shard in enumerate(shards):
        synth_coldstart(_cfg(tiny_dataset, shard, shard=(i, 3)))
    before = [(s / "attempts.jsonl").read_bytes() for s in shards]
    merged = merge_runs(shards, tmp_path / "merged")
    assert merged.attempts == 20 and merged.duplicates == 0
    assert _final_set(tmp_path / "merged") == _final_set(whole)
    assert [(s / "attempts.jsonl").read_bytes() for s in shards] == before  # sources only read
    again = synth_coldstart(_cfg(tiny_dataset, tmp_path / "merged"))  # a merged run resumes like any run
    assert again.sampling.attempted_now == 0 and again.kept == merged.kept
    res = subprocess.run(_cli("merge-runs", str(shards[0]), str(whole), "--out", str(tmp_path / "m2")), cwd=ROOT,
                         capture_output=True, text=True)
    shared = set(_attempt_keys(shards[0])) & set(_attempt_keys(whole))  # s0's attempts are also in whole
    assert shared and set(_attempt_keys(tmp_path / "m2")) == set(_attempt_keys(whole))
    assert res.returncode == 0 and f"20 attempts from 2 runs ({len(shared)} duplicates dropped)" in res.stdout
    assert _final_set(tmp_path / "m2") == _final_set(whole)  # dropped, not doubled


def test_merge_refuses_runs_of_different_syntheses(tiny_dataset, tmp_path):
    from minio3_data.errors import BadInputError
    from pipelines.synth_coldstart.merge import merge_runs

    synth_coldstart(_cfg(tiny_dataset, tmp_path / "a", limit=1))
    synth_coldstart(_cfg(tiny_dataset, tmp_path / "b", limit=1, seed=99))
    with pytest.raises(BadInputError, match="seed"):
        merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_file_image_transport_sends_paths_and_writes_each_image_once(tiny_dataset, tmp_path):
    """For a server on the same filesystem: requests carry file:// URLs, never base64, and stay small."""
    run = tmp_path / "run"
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:
        summary = synth_coldstart(_cfg(tiny_dataset, run, teacher="openai", model="m", base_urls=[srv.openai_url],
                                       api_key_env="NONE", image_transport="file", limit=3))
        bodies = [json.dumps(r.body) for r in srv.requests]
        seen = [img for r in srv.requests for img in r.view.images()]
    assert summary.kept == 6
    assert all("base64" not in b and "file://" in b and len(b) < 60_000 for b in bodies)
    media = sorted((run / "media").iterdir())
    assert len(media) == len({p.read_bytes() for p in media})  # content-addressed: each image once
    # everything the server read is there (plus the images of exemplars no attempt happened to draw)
    assert set(seen) <= {p.read_bytes() for p in media}


@pytest.mark.parametrize("transport", ["inline", "file"])
def test_wire_forms_of_trajectory_images_are_built_off_the_event_loop(tiny_dataset, tmp_path, monkeypatch, transport):
    """base64 and file writes of each new image happen in the thread that encoded it, not on the loop
    that drives every other trajectory."""
    import threading

    from minio3_data.teachers.openai_compat import OpenAITeacher

    threads: list[str] = []
    real = OpenAITeacher.prepare_image

    def spy(self, ref):
        threads.append(threading.current_thread().name)
        real(self, ref)

    monkeypatch.setattr(OpenAITeacher, "prepare_image", spy)
    with LoopbackTeacher(answers=_answers(tiny_dataset)) as srv:
        summary = synth_coldstart(_cfg(tiny_dataset, tmp_path / "run", teacher="openai", model="m",
                                       base_urls=[srv.openai_url], api_key_env="NONE", image_transport=transport,
                                       limit=3))
    assert summary.kept == 6
    on_loop = [t for t in threads if t == "MainThread"]
    # the loop prepares only the shared exemplar images, once at start; first views and crops go elsewhere
    assert 0 < len(on_loop) < len(threads) and threads[: len(on_loop)] == on_loop
