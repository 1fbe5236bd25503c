"""The run store survives kills, damage and full disks: a torn tail is dropped, a bad line elsewhere is skipped
and kept aside (the records after it survive), a failed write is undone and stops the run."""

from __future__ import annotations

import errno
import json
import os

import pytest
from typer.testing import CliRunner

from cli import app
from minio3_data.errors import StorageError
from minio3_data.records import Trajectory, Usage, Verdict
from minio3_data.store import ATTEMPTS, REPLIES, JsonlLog, RunStore
from pipelines.synth_coldstart import SynthConfig, synth_coldstart


def _traj(item: str, sample: int, status: str = "answered", requests: int = 1) -> Trajectory:
    return Trajectory(
        id=f"{item}#{sample}", item_id=item, sample_index=sample, teacher="scripted:x", exemplar_ids=[],
        question="q", options=[], ground_truth="a", image="images/x.jpg", width=10, height=10,
        difficulty="easy", turns=[], final_answer="a", verdict=Verdict("correct", "rule"), status=status,
        num_turns=1, usage=Usage(requests=requests),
    )


def _reply(key: str) -> dict:
    return {"key": key, "text": "<answer>x</answer>", "usage": {"requests": 1}, "finish_reason": "stop"}


def _write_lines(path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(line + b"\n" for line in lines))


def test_torn_tail_is_dropped_and_reported(tmp_path):
    store = RunStore(tmp_path)
    store.add_attempt(_traj("a", 0))
    store.add_attempt(_traj("b", 0))
    store.close()
    with open(tmp_path / ATTEMPTS, "ab") as f:
        f.write(_traj("c", 0).to_json().encode()[:37])  # a SIGKILL in the middle of a write
    state = RunStore(tmp_path).load()
    assert set(state.attempts) == {("a", 0), ("b", 0)}
    assert len(state.damaged) == 1 and state.damaged[0].torn_bytes == 37 and not state.damaged[0].bad_lines
    assert "torn last line of 37 bytes" in state.damaged[0].describe()
    # the file was cut back to its last complete line, so the next append starts on a fresh line
    store = RunStore(tmp_path)
    store.add_attempt(_traj("c", 0))
    store.close()
    lines = (tmp_path / ATTEMPTS).read_text().splitlines()
    assert [json.loads(x)["item_id"] for x in lines] == ["a", "b", "c"]
    assert not (tmp_path / (ATTEMPTS + ".bad")).exists()  # a torn tail is incomplete: nothing to keep aside


def test_a_bad_line_mid_log_is_skipped_kept_aside_and_the_lines_after_it_survive(tmp_path):
    good = [_traj(f"i{k}", 0).to_json().encode() for k in range(5)]
    bad = [b"\x00\xffgarbage", b"[1, 2]", json.dumps({"item_id": "x"}).encode(), b'{"id": "half']
    _write_lines(tmp_path / ATTEMPTS, [good[0], bad[0], good[1], bad[1], good[2], bad[2], good[3], bad[3], good[4]])
    replies = [json.dumps(_reply(f"k{k}")).encode() for k in range(3)]
    no_key = json.dumps({"text": "x", "usage": {}, "finish_reason": "stop"}).encode()
    _write_lines(tmp_path / REPLIES, [replies[0], no_key, replies[1], b"{not json", replies[2]])
    state = RunStore(tmp_path).load()
    assert sorted(state.attempts) == [(f"i{k}", 0) for k in range(5)]  # every record after the bad lines too
    assert sorted(state.replies) == ["k0", "k1", "k2"]
    attempts, replies_damage = state.damaged
    assert attempts.bad_lines == [2, 4, 6, 8] and attempts.torn_bytes == 0
    assert replies_damage.bad_lines == [2, 4]
    assert "skipped 4 damaged lines (line 2, 4, 6, 8), moved to" in attempts.describe()
    assert (tmp_path / (ATTEMPTS + ".bad")).read_bytes().split(b"\n")[:-1] == bad
    assert (tmp_path / ATTEMPTS).read_bytes().split(b"\n")[:-1] == good  # the log holds only its good lines
    again = RunStore(tmp_path).load()  # a second load finds nothing and keeps nothing aside twice
    assert not again.damaged and sorted(again.attempts) == sorted(state.attempts)
    assert (tmp_path / (ATTEMPTS + ".bad")).read_bytes().split(b"\n")[:-1] == bad


def test_bad_lines_already_kept_aside_are_not_kept_twice(tmp_path):
    """A repair killed between keeping lines aside and rewriting the log finds them again next time."""
    log = JsonlLog(tmp_path / ATTEMPTS)
    _write_lines(log.path, [b"junk", _traj("a", 0).to_json().encode()])
    _write_lines(log.bad_path, [b"junk"])
    records, damage = log.read(Trajectory.from_dict)
    assert [t.item_id for t in records] == ["a"] and damage is not None and damage.bad_lines == [1]
    assert log.bad_path.read_bytes() == b"junk\n"


def test_reading_without_repair_reports_and_changes_nothing(tmp_path):
    content = b"junk\n" + _traj("a", 0).to_json().encode() + b"\n{torn"
    (tmp_path / ATTEMPTS).write_bytes(content)
    state = RunStore(tmp_path).load(repair=False)
    assert list(state.attempts) == [("a", 0)]
    (damage,) = state.damaged
    assert damage.bad_lines == [1] and damage.torn_bytes == 5 and damage.kept_aside is None
    assert (tmp_path / ATTEMPTS).read_bytes() == content and not (tmp_path / (ATTEMPTS + ".bad")).exists()


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path):
    (tmp_path / ATTEMPTS).write_bytes(_traj("a", 0).to_json().encode())
    state = RunStore(tmp_path).load()
    assert list(state.attempts) == [("a", 0)] and not state.damaged
    store = RunStore(tmp_path)
    store.add_attempt(_traj("b", 0))
    store.close()
    assert sorted(RunStore(tmp_path).load().attempts) == [("a", 0), ("b", 0)]


def test_failed_attempts_are_retried_and_last_line_wins(tmp_path):
    store = RunStore(tmp_path)
    store.add_attempt(_traj("a", 0, status="failed"))
    store.add_attempt(_traj("b", 1, status="over_turn"))
    store.close()
    state = RunStore(tmp_path).load()
    assert not state.done(("a", 0)) and state.done(("b", 1))
    store = RunStore(tmp_path)
    store.add_attempt(_traj("a", 0))
    store.close()
    state = RunStore(tmp_path).load()
    assert state.done(("a", 0)) and state.attempts[("a", 0)].status == "answered"
    assert state.lines == 3 and state.superseded.requests == 1  # the failed line paid once


def test_a_duplicated_line_is_counted_once(tmp_path):
    line = _traj("a", 0, status="failed", requests=3).to_json().encode()
    _write_lines(tmp_path / ATTEMPTS, [line, line])
    state = RunStore(tmp_path).load()
    assert list(state.attempts) == [("a", 0)] and state.superseded.requests == 0


def test_reply_cache_roundtrip(tmp_path):
    store = RunStore(tmp_path)
    store.add_reply({"key": "a#0@0:abc", "text": "<answer>x</answer>", "usage": {}, "finish_reason": "stop"})
    store.close()
    assert RunStore(tmp_path).load().replies["a#0@0:abc"]["text"] == "<answer>x</answer>"


def _short_writes(monkeypatch, then: OSError | None = None, chunk: int = 7, after: int = 2) -> list[int]:
    """os.write writes at most `chunk` bytes a call; with `then`, it raises it after `after` calls. Returns
    [the number of calls so far]."""
    real = os.write
    calls = [0]

    def write(fd: int, data) -> int:
        calls[0] += 1
        if then is not None and calls[0] > after:
            raise then
        return real(fd, bytes(data[:chunk]))

    monkeypatch.setattr(os, "write", write)
    return calls


def test_a_short_write_is_completed(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    calls = _short_writes(monkeypatch)
    store.add_attempt(_traj("a", 0))
    store.add_attempt(_traj("b", 0))
    monkeypatch.undo()
    assert calls[0] > 2 * len(_traj("a", 0).to_json()) // 7  # one record took many short writes
    store.close()
    assert sorted(RunStore(tmp_path).load().attempts) == [("a", 0), ("b", 0)]


@pytest.mark.parametrize(("code", "message"), [
    (errno.ENOSPC, "disk full writing {path}; free space and rerun"),
    (errno.EIO, "cannot write {path}: Input/output error; fix it and rerun"),
])
def test_a_failed_write_is_undone_and_raised_as_one_line(tmp_path, monkeypatch, code, message):
    store = RunStore(tmp_path)
    store.add_attempt(_traj("a", 0))
    before = (tmp_path / ATTEMPTS).read_bytes()
    _short_writes(monkeypatch, then=OSError(code, os.strerror(code)))
    with pytest.raises(StorageError) as err:
        store.add_attempt(_traj("b", 0))
    monkeypatch.undo()
    assert str(err.value) == message.format(path=tmp_path / ATTEMPTS)
    assert (tmp_path / ATTEMPTS).read_bytes() == before  # the part written is cut back off
    store.add_attempt(_traj("c", 0))  # space freed: the log goes on, valid
    store.close()
    state = RunStore(tmp_path).load()
    assert sorted(state.attempts) == [("a", 0), ("c", 0)] and not state.damaged


def test_a_failed_write_that_cannot_be_undone_stops_every_later_append(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    _short_writes(monkeypatch, then=OSError(errno.EIO, "Input/output error"))

    def no_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "ftruncate", no_truncate)
    with pytest.raises(StorageError):
        store.add_attempt(_traj("a", 0))
    monkeypatch.undo()
    with pytest.raises(StorageError, match="cannot write"):  # nothing may follow the torn bytes
        store.add_attempt(_traj("b", 0))
    store.close()
    state = RunStore(tmp_path).load()  # the torn bytes are the last line: dropped as a torn tail
    assert not state.attempts and state.damaged[0].torn_bytes == 14


def _synth(dataset, out, **kw) -> SynthConfig:
    return SynthConfig(dataset=dataset, out=out, target=None, samples_per_item=1, concurrency=2, progress=False,
                       **kw)


def test_resume_after_a_damaged_line_redoes_only_that_attempt(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    synth_coldstart(_synth(tiny_dataset, run))
    lines = (run / ATTEMPTS).read_bytes().split(b"\n")
    lines[2] = b"\x00" * 40  # a bad sector in line 3
    (run / ATTEMPTS).write_bytes(b"\n".join(lines))
    summary = synth_coldstart(_synth(tiny_dataset, run))
    assert summary.sampling.attempted_now == 1 and summary.attempts == 10  # not the 8 lines after it
    assert summary.sampling.damaged == [f"{run / ATTEMPTS}: skipped 1 damaged line (line 3), moved to {run / ATTEMPTS}.bad"]
    stats = json.loads((run / "stats.json").read_text())
    assert [(d["file"], d["bad_lines"]) for d in stats["damaged_lines"]] == [(str(run / ATTEMPTS), [3])]
    assert (run / (ATTEMPTS + ".bad")).read_bytes() == b"\x00" * 40 + b"\n"


def test_a_full_disk_stops_the_run_with_one_line_and_a_valid_log(tiny_dataset, tmp_path, monkeypatch):
    run = tmp_path / "run"
    args = ["synth-coldstart", "--dataset", str(tiny_dataset), "--out", str(run), "--samples-per-item", "1",
            "--target", "100", "--concurrency", "2"]
    _short_writes(monkeypatch, then=OSError(errno.ENOSPC, "No space left on device"), chunk=500, after=20)
    res = CliRunner().invoke(app, args)
    monkeypatch.undo()
    assert res.exit_code == 2 and isinstance(res.exception, SystemExit), res.output
    assert res.output.strip().splitlines()[-1] == f"error: disk full writing {run / ATTEMPTS}; free space and rerun"
    assert "Traceback" not in res.output and not (run / "stats.json").exists()
    done = [json.loads(x) for x in (run / ATTEMPTS).read_text().splitlines()]  # every line whole
    assert 0 < len(done) < 10
    res = CliRunner().invoke(app, args)  # space freed: the same command finishes the run
    assert res.exit_code == 0 and "kept" in res.output and "resume:" not in res.output
    assert len((run / ATTEMPTS).read_text().splitlines()) == 10


def test_merge_reports_damaged_source_lines_and_changes_no_source(tiny_dataset, tmp_path):
    shards = [tmp_path / f"s{i}" for i in range(2)]
    for i, shard in enumerate(shards):
        synth_coldstart(_synth(tiny_dataset, shard, shard=(i, 2)))
    lines = (shards[0] / ATTEMPTS).read_bytes().split(b"\n")
    lines.insert(1, b"[]")
    (shards[0] / ATTEMPTS).write_bytes(b"\n".join(lines))
    before = [(s / ATTEMPTS).read_bytes() for s in shards]
    res = CliRunner().invoke(app, ["merge-runs", *map(str, shards), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert f"merge: {shards[0] / ATTEMPTS}: skipped 1 damaged line (line 2)\n" in res.output
    assert "10 attempts from 2 runs" in res.output
    assert [(s / ATTEMPTS).read_bytes() for s in shards] == before
    assert not (shards[0] / (ATTEMPTS + ".bad")).exists()
    stats = json.loads((tmp_path / "m" / "stats.json").read_text())
    assert stats["damaged_lines"][0]["bad_lines"] == [2] and stats["damaged_lines"][0]["kept_aside"] is None
