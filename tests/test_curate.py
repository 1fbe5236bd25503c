"""Pattern tags come from actions; curation keeps only correct attempts, deterministically."""

from __future__ import annotations

from minio3_data.records import Trajectory, Turn, Usage, Verdict
from pipelines.synth_coldstart.curate import curate, primary_pattern
from pipelines.synth_coldstart.patterns import tag_patterns


def _zoom(box, source="original_image", obs=None, error=None):
    return Turn("t", "zoom", bbox=[0, 0, 1, 1], source=source, box_px=None if error else box,
                observation=obs, error=error)


def _traj(turns, item="i", sample=0, label="correct", status="answered"):
    turns = [*turns, Turn("t", "answer", answer="A")]
    return Trajectory(
        id=f"{item}#{sample}", item_id=item, sample_index=sample, teacher="t", exemplar_ids=[], question="q",
        options=[], ground_truth="A", image="x.jpg", width=100, height=100, difficulty="easy", turns=turns,
        final_answer="A", verdict=Verdict(label, "rule"), status=status, num_turns=len(turns), usage=Usage(),
    )


def test_direct_and_depth_first():
    assert tag_patterns(_traj([])) == ["direct"]
    t = _traj([_zoom([0, 0, 50, 50], obs=1), _zoom([10, 10, 20, 20], "observation_1", obs=2)])
    assert "depth_first" in tag_patterns(t) and "backtrack" not in tag_patterns(t)


def test_backtrack_needs_a_disjoint_zoom_from_the_original():
    t = _traj([_zoom([0, 0, 40, 40], obs=1), _zoom([60, 60, 100, 100], obs=2)])
    assert "backtrack" in tag_patterns(t)
    t = _traj([_zoom([0, 0, 40, 40], obs=1), _zoom([30, 30, 60, 60], obs=2)])
    assert "backtrack" not in tag_patterns(t)


def test_verification_is_a_revisit_not_a_descent():
    descent = _traj([_zoom([0, 0, 50, 50], obs=1), _zoom([10, 10, 20, 20], "observation_1", obs=2)])
    assert "verification" not in tag_patterns(descent)
    revisit = _traj([_zoom([0, 0, 50, 50], obs=1), _zoom([60, 60, 90, 90], obs=2), _zoom([10, 10, 40, 40], obs=3)])
    assert "verification" in tag_patterns(revisit)


def test_error_recovery():
    t = _traj([Turn("bad", "malformed", error="no action"), _zoom([0, 0, 10, 10], obs=1)])
    assert "error_recovery" in tag_patterns(t)
    assert "error_recovery" not in tag_patterns(_traj([_zoom([0, 0, 10, 10], obs=1)]))


def test_curate_keeps_correct_only_per_item_cap_and_target():
    attempts = [
        _traj([], "b", 0), _traj([], "b", 1), _traj([], "a", 1), _traj([], "a", 0),
        _traj([], "c", 0, label="wrong"), _traj([], "d", 0, status="over_turn"),
    ]
    order = {"a": 0, "b": 1, "c": 2, "d": 3}
    res = curate(attempts, order, max_per_item=1)
    assert [t.id for t in res.kept] == ["a#0", "b#0"] and res.candidates == 4
    assert [t.id for t in curate(attempts, order, target=3).kept] == ["a#0", "a#1", "b#0"]


def test_curate_mix_prefers_quota_patterns():
    direct = [_traj([], f"d{i}") for i in range(4)]
    back = [_traj([_zoom([0, 0, 40, 40], obs=1), _zoom([60, 60, 100, 100], obs=2)], f"z{i}") for i in range(2)]
    order = {t.item_id: k for k, t in enumerate(direct + back)}
    kept = curate(direct + back, order, mix={"backtrack": 0.5, "direct": 0.5}, target=4).kept
    assert sorted(primary_pattern(t.patterns) for t in kept) == ["backtrack", "backtrack", "direct", "direct"]


def test_exemplar_sampling_modes():
    import random

    from minio3_data.images import OriginalCache
    from pipelines.sampling.prompt import ExemplarPrompts

    prompts = ExemplarPrompts(None, 3, OriginalCache(), "patterns")
    for seed in range(5):
        ids, prefix = prompts.sample(random.Random(seed))
        assert len({i.split("-")[0] for i in ids}) == 3  # one dfs, one trial, one goal exemplar
        assert prefix[0].role == "system" and "3 conversation" in prefix[0].text
    prompts.sampling = "fixed"
    assert prompts.sample(random.Random(1))[0] == prompts.sample(random.Random(2))[0]
    prompts.sampling = "random"
    draws = {tuple(prompts.sample(random.Random(s))[0]) for s in range(10)}
    assert len(draws) > 1
