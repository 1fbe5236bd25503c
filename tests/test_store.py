"""The run store survives kills: torn tails are dropped and reported, failed attempts are retried."""

from __future__ import annotations

import json

from minio3_data.records import Trajectory, Usage, Verdict
from minio3_data.store import ATTEMPTS, RunStore


def _traj(item: str, sample: int, status: str = "answered") -> Trajectory:
    return Trajectory(
        id=f"{item}#{sample}", item_id=item, sample_index=sample, teacher="scripted:x", exemplar_ids=[],
        question="q", options=[], ground_truth="a", image="images/x.jpg", width=10, height=10,
        difficulty="easy", turns=[], final_answer="a", verdict=Verdict("correct", "rule"), status=status,
        num_turns=1, usage=Usage(requests=1),
    )


def test_torn_tail_is_dropped_and_reported(tmp_path):
    store = RunStore(tmp_path)
    store.add_attempt(_traj("a", 0))
    store.add_attempt(_traj("b", 0))
    store.close()
    with open(tmp_path / ATTEMPTS, "ab") as f:
        f.write(_traj("c", 0).to_json().encode()[:37])  # a SIGKILL in the middle of a write
    state = RunStore(tmp_path).load()
    assert set(state.attempts) == {("a", 0), ("b", 0)}
    assert len(state.torn) == 1 and state.torn[0].bytes_dropped == 37
    # the file was cut back to its last complete line, so the next append starts on a fresh line
    store = RunStore(tmp_path)
    store.add_attempt(_traj("c", 0))
    store.close()
    lines = (tmp_path / ATTEMPTS).read_text().splitlines()
    assert [json.loads(x)["item_id"] for x in lines] == ["a", "b", "c"]


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
    assert state.lines == 3


def test_reply_cache_roundtrip(tmp_path):
    store = RunStore(tmp_path)
    store.add_reply({"key": "a#0@0:abc", "text": "<answer>x</answer>", "usage": {}, "finish_reason": "stop"})
    store.close()
    assert RunStore(tmp_path).load().replies["a#0@0:abc"]["text"] == "<answer>x</answer>"
