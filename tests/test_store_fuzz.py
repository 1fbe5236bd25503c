"""Run logs corrupted at random (garbage lines, wrong-shape JSON, duplicated lines, a cut at any byte): resume
and merge keep every intact record, report every damaged line, and count a duplicated line once."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minio3_data.records import Trajectory, Usage
from minio3_data.store import ATTEMPTS, REPLIES, RUN_JSON, LogDamage, RunState, RunStore
from pipelines.synth_coldstart import SynthConfig, synth_coldstart
from pipelines.synth_coldstart.merge import merge_runs

LOGS = (ATTEMPTS, REPLIES)
WRONG_SHAPES = [b"[]", b"[1,2]", b"{}", b"null", b"42", b'"text"', b'{"item_id":"x","sample_index":0}',
                b'{"key":"k"}', b'{"key":5,"text":"t","usage":{},"finish_reason":"stop"}']

junk = st.one_of(
    st.binary(min_size=1, max_size=30).filter(lambda b: b"\n" not in b and b.strip()),
    st.sampled_from(WRONG_SHAPES),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3).map(lambda d: json.dumps(d).encode()),
)
# an edit: insert a junk line, or a copy of the line at an index, at a position (both taken modulo the length)
edits = st.lists(st.tuples(st.integers(0, 999), st.one_of(junk, st.integers(0, 999))), max_size=5)
cuts = st.one_of(st.none(), st.integers(0, 10**6))  # truncate the file at this byte (modulo its size)


@pytest.fixture(scope="module")
def shards(tiny_dataset, tmp_path_factory) -> list[Path]:
    """Two shards of one small scripted run, each with a replies log of fake records."""
    root = tmp_path_factory.mktemp("fuzz-base")
    runs = [root / f"s{i}" for i in range(2)]
    for i, run in enumerate(runs):
        synth_coldstart(SynthConfig(dataset=tiny_dataset, out=run, target=None, samples_per_item=1,
                                    concurrency=2, progress=False, shard=(i, 2)))
        replies = [{"key": f"s{i}r{k}", "text": f"<answer>{k}</answer>", "usage": {"requests": 1},
                    "finish_reason": "stop", "extra": {}} for k in range(6)]
        (run / REPLIES).write_text("".join(json.dumps(r) + "\n" for r in replies))
    return runs


def _corrupt(lines: list[bytes], edit: list[tuple[int, bytes | int]], cut: int | None) -> bytes:
    entries = list(lines)
    for pos, what in edit:
        line = entries[what % len(entries)] if isinstance(what, int) else what
        entries.insert(pos % (len(entries) + 1), line)
    data = b"".join(line + b"\n" for line in entries)
    return data if cut is None else data[: cut % (len(data) + 1)]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _expect(data: bytes, originals: set[bytes]) -> tuple[list[bytes], list[int], int]:
    """(the intact lines, the 1-based numbers of damaged lines, where the last non-blank line starts)."""
    pieces = data.split(b"\n")
    intact = [p for p in pieces if p in originals]
    damaged = [i + 1 for i, p in enumerate(pieces) if p.strip() and p not in originals]
    starts = [sum(len(p) + 1 for p in pieces[:i]) for i in range(len(pieces))]
    last = max((i for i, p in enumerate(pieces) if p.strip()), default=0)
    return intact, damaged, starts[last]


def _check_damage(damage: LogDamage | None, data: bytes, damaged: list[int], last_start: int) -> None:
    """Every damaged line is reported once: as the torn last line (dropped) or as a bad line (skipped)."""
    if not damaged:
        assert damage is None
        return
    assert damage is not None
    torn = [data[:last_start].count(b"\n") + 1] if damage.torn_bytes else []
    assert damage.torn_bytes in (0, len(data) - last_start)
    assert sorted(damage.bad_lines + torn) == damaged


def _check_state(state: RunState, intact: dict[str, list[bytes]]) -> None:
    attempts = [Trajectory.from_dict(json.loads(x)) for x in intact[ATTEMPTS]]
    assert state.attempts == {(t.item_id, t.sample_index): t for t in attempts}
    assert state.superseded == Usage()  # the base run has one line per attempt: a copy adds nothing
    assert state.replies == {r["key"]: r for r in map(json.loads, intact[REPLIES])}


def _write_corrupted(src: Path, dst: Path, edit, cut) -> dict[str, tuple[bytes, list[bytes], list[int], int]]:
    dst.mkdir()
    shutil.copy(src / RUN_JSON, dst / RUN_JSON)
    out = {}
    for name in LOGS:
        originals = _lines(src / name)
        data = _corrupt(originals, edit, cut if name == ATTEMPTS else None)
        (dst / name).write_bytes(data)
        out[name] = (data, *_expect(data, set(originals)))
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edit=edits, cut=cuts)
def test_resume_keeps_every_intact_record_and_reports_every_damaged_line(shards, tmp_path_factory, edit, cut):
    run = tmp_path_factory.mktemp("fuzz") / "run"
    logs = _write_corrupted(shards[0], run, edit, cut)
    intact = {name: logs[name][1] for name in LOGS}

    state = RunStore(run).load(repair=False)  # what merge-runs reads: reported, the files untouched
    _check_state(state, intact)
    damage = {Path(d.file).name: d for d in state.damaged}
    for name, (data, _, damaged, last_start) in logs.items():
        _check_damage(damage.get(name), data, damaged, last_start)
        assert (run / name).read_bytes() == data

    repaired = RunStore(run).load()  # a resume: the same records and reports, the logs left clean
    _check_state(repaired, intact)
    assert [(d.file, d.torn_bytes, d.bad_lines) for d in repaired.damaged] == [
        (d.file, d.torn_bytes, d.bad_lines) for d in state.damaged]
    for d in repaired.damaged:
        data = logs[Path(d.file).name][0]
        kept_aside = {data.split(b"\n")[i - 1] for i in d.bad_lines}
        assert (d.kept_aside is not None) == bool(kept_aside)
        assert set(_lines(Path(d.file + ".bad")) if kept_aside else []) == kept_aside
    again = RunStore(run).load()
    assert not again.damaged
    _check_state(again, intact)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edit=edits, cut=cuts)
def test_merge_keeps_every_intact_record_and_reports_every_damaged_line(shards, tmp_path_factory, edit, cut):
    root = tmp_path_factory.mktemp("fuzz-merge")
    logs = _write_corrupted(shards[0], root / "run", edit, cut)
    summary = merge_runs([root / "run", shards[1]], root / "merged")
    merged = RunStore(root / "merged").load(repair=False)
    assert not merged.damaged
    expected = RunStore(shards[1]).load(repair=False)
    for line in logs[ATTEMPTS][1]:
        expected.record(Trajectory.from_dict(json.loads(line)))
    expected.replies.update((r["key"], r) for r in map(json.loads, logs[REPLIES][1]))
    assert merged.attempts == expected.attempts and merged.replies == expected.replies
    assert summary.attempts == len(expected.attempts) and summary.duplicates == 0
    source = RunStore(root / "run").load(repair=False)  # what the test above proves reports every damaged line
    assert summary.damaged == [d.describe() for d in source.damaged]
    assert [Path(d.file).name for d in source.damaged] == [name for name in LOGS if logs[name][2]]
