"""Scoring an evaluation from hand-made runs: one pass at the largest budget read at every smaller budget,
Avg@k per question (option cycles as one question), bootstrap intervals, over-turn rate and mean turns."""

from __future__ import annotations

import numpy as np
import pytest

from minio3_data.errors import BadInputError
from minio3_data.records import ProbeItem, Trajectory, Turn, Verdict
from pipelines.eval.budgets import outcome_at, still_running
from pipelines.eval.completeness import completeness
from pipelines.eval.config import eval_config, parse_budgets
from pipelines.eval.metrics import bootstrap_ci, group_results, questions


def traj(item: str, sample: int, turns: int, status: str, correct: bool = False) -> Trajectory:
    """A finished attempt of `turns` assistant turns (zooms, then the action its status implies)."""
    kinds = ["zoom"] * turns
    if status == "answered":
        kinds[-1] = "answer"
    elif status == "void":
        kinds[-1] = "void"
    label = "correct" if correct else ("wrong" if status == "answered" else "unjudged")
    return Trajectory(
        id=f"{item}#{sample}", item_id=item, sample_index=sample, teacher="hand", exemplar_ids=[], question="q",
        options=[], ground_truth="a", image="i.jpg", width=100, height=100, difficulty="hard",
        turns=[Turn("t", k) for k in kinds], final_answer="a" if status == "answered" else None,
        verdict=Verdict(label, "hand"), status=status, num_turns=turns,
    )  # fmt: skip


def item(iid: str, difficulty: str = "hard", source: str = "s", group: str = "", kind: str = "") -> ProbeItem:
    return ProbeItem(
        iid,
        "i.jpg",
        "q",
        "a",
        difficulty=difficulty,
        width=100,
        height=100,
        source=source,
        kind=kind,
        question_group=group,
    )


@pytest.mark.parametrize(
    ("t", "budget", "expected"),
    [
        (traj("a", 0, 3, "answered", True), 2, (False, True, 2)),  # not answered by turn 2: over-turn there
        (traj("a", 0, 3, "answered", True), 3, (True, False, 3)),  # answered on its last allowed turn
        (traj("a", 0, 3, "answered", True), 32, (True, False, 3)),
        (traj("a", 0, 2, "answered", False), 4, (False, False, 2)),  # wrong stays wrong, not over-turn
        (
            traj("a", 0, 1, "void", False),
            1,
            (False, False, 1),
        ),  # a void turn ends it the same at every budget
        (traj("a", 0, 8, "over_turn"), 8, (False, True, 8)),  # over-turn at the largest budget
        (traj("a", 0, 8, "over_turn"), 4, (False, True, 4)),
        (traj("a", 0, 5, "over_turn"), 8, (False, True, 5)),  # the context budget ended it at 5 turns
        (traj("a", 0, 8, "malformed"), 8, (False, True, 8)),  # an error turn was its last allowed turn
    ],
)
def test_a_trajectory_read_at_a_smaller_budget(t: Trajectory, budget: int, expected: tuple) -> None:
    o = outcome_at(t, budget)
    assert (o.correct, o.over_turn, o.turns) == expected


def test_avg_at_k_over_turn_and_mean_turns_by_hand() -> None:
    items = [item("q1", "easy"), item("q2")]
    runs = [
        traj("q1", 0, 1, "answered", True), traj("q1", 1, 3, "answered", True),
        traj("q1", 2, 2, "answered", False), traj("q1", 3, 4, "over_turn"),
        traj("q2", 0, 2, "answered", True), traj("q2", 1, 1, "void"),
        traj("q2", 2, 4, "over_turn"), traj("q2", 3, 3, "failed"),  # failed: left out, rerun retries it
    ]  # fmt: skip
    qs = questions(items, runs, [1, 2, 4], k=4)
    assert [(q.samples, q.failed, q.missing) for q in qs] == [(4, 0, 0), (3, 1, 0)]
    all_, easy, hard = group_results(qs, [1, 2, 4], resamples=200, seed=0)
    assert [g.name for g in (all_, easy, hard)] == ["all", "difficulty=easy", "difficulty=hard"]
    # q1 scores 1/4, 1/4, 2/4; q2 scores 0, 1/3, 1/3 at budgets 1, 2, 4
    assert [r.avg_at_k for r in all_.rows] == pytest.approx(
        [(1 / 4 + 0) / 2, (1 / 4 + 1 / 3) / 2, (2 / 4 + 1 / 3) / 2]
    )
    # over-turn out of 7 samples: budget 1: q1 3 + q2 2; budget 2: q1 2 (3 and 4 turns) + q2 1; budget 4: 1 + 1
    assert [r.over_turn_rate for r in all_.rows] == pytest.approx([5 / 7, 3 / 7, 2 / 7])
    # mean turns: min(turns, budget) over the 7 samples
    assert [r.mean_turns for r in all_.rows] == pytest.approx(
        [7 / 7, (1 + 2 + 2 + 2 + 2 + 1 + 2) / 7, (1 + 3 + 2 + 4 + 2 + 1 + 4) / 7]
    )
    assert easy.rows[2].ci95 == (0.5, 0.5) and hard.rows[1].avg_at_k == pytest.approx(
        1 / 3
    )  # one question: no spread


def test_option_cycles_are_one_question_with_all_their_samples() -> None:
    items = [item("c0", group="g"), item("c1", group="g"), item("solo")]
    runs = [traj("c0", 0, 1, "answered", True), traj("c0", 1, 1, "answered", False),
            traj("c1", 0, 1, "answered", True), traj("c1", 1, 1, "answered", True),
            traj("solo", 0, 1, "answered", False), traj("solo", 1, 1, "answered", False)]  # fmt: skip
    qs = questions(items, runs, [4], k=2)
    assert [(q.key, q.samples, q.expected, int(q.correct[0])) for q in qs] == [("g", 4, 4, 3), ("solo", 2, 2, 0)]
    (all_,) = group_results(qs, [4], resamples=200, seed=0)
    assert all_.questions == 2 and all_.rows[0].avg_at_k == pytest.approx((3 / 4 + 0) / 2)


def test_bootstrap_is_seeded_chunk_independent_and_brackets_the_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    scores = np.random.default_rng(1).random((50, 3))
    whole = bootstrap_ci(scores, 500, seed=7)
    monkeypatch.setattr("pipelines.eval.metrics.CHUNK_CELLS", 150 * 3)  # three resamples at a time
    assert np.array_equal(bootstrap_ci(scores, 500, seed=7), whole)
    assert np.all(whole[0] <= scores.mean(axis=0)) and np.all(scores.mean(axis=0) <= whole[1])
    assert not np.array_equal(bootstrap_ci(scores, 500, seed=8), whole)


@pytest.mark.parametrize(("text", "expected"), [("4,8,12", [4, 8, 12]), ("32,4,4", [4, 32]), (" 8", [8])])
def test_budgets_parse(text: str, expected: list[int]) -> None:
    assert parse_budgets(text) == expected


@pytest.mark.parametrize("text", ["4,x", "0,4", "-2", "", "4,,8", "2.5"])
def test_unknown_budget_values_are_one_line(text: str) -> None:
    with pytest.raises(BadInputError, match=r"^--max-turns .*: use turn budgets as whole numbers") as e:
        parse_budgets(text)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_one_line(tmp_path, k: int) -> None:
    with pytest.raises(
        BadInputError, match=rf"^--k {k}: must be a whole number of samples per question, at least 1$"
    ):
        eval_config(tmp_path / "d", tmp_path / "o", k=k)


def test_an_evaluation_run_is_a_synthesis_run_without_exemplars_or_target(tmp_path) -> None:
    cfg = eval_config(tmp_path / "d", tmp_path / "o", budgets=[16, 4], k=8, teacher="scripted")
    run = cfg.run
    assert cfg.budgets == [4, 16] and cfg.k == 8 and run.split == "test"
    assert (run.max_turns, run.max_images, run.samples_per_item, run.exemplars_in_context, run.target) == (
        16,
        16,
        8,
        0,
        None,
    )


def test_a_partial_eval_counts_what_it_lacks_and_says_so() -> None:
    """k = 2: q1 has both samples (one answer unjudged at turn 3), q2 one failed and one never played, q3 none."""
    unjudged = traj("q1", 1, 3, "answered")
    unjudged.verdict = Verdict("unjudged", "judge failed")
    runs = [traj("q1", 0, 1, "answered", True), unjudged, traj("q2", 0, 2, "failed")]
    qs = questions([item("q1"), item("q2"), item("q3")], runs, [2, 4], k=2)
    assert [(q.samples, q.failed, q.missing) for q in qs] == [(2, 0, 0), (0, 1, 1), (0, 0, 2)]
    c = completeness(qs, [2, 4], k=2)
    assert not c.complete and (c.expected, c.scored, c.failed, c.missing, c.short, c.empty) == (6, 2, 1, 3, 2, 2)
    assert c.unjudged == {2: 0, 4: 1}  # at 2 turns it had not answered: over-turn, not unjudged
    assert c.banner() == (
        "INCOMPLETE EVALUATION: 4 of 6 samples are not scored (1 failed, 3 never ran; rerun the same command to "
        "play them); 2 questions have no sample, left out of the table; 1 answer at 4 turns unjudged (the judge "
        "did not decide; scored 0; rerun the same command to ask it again)"
    )
    assert [g.samples for g in group_results(qs, [2, 4], resamples=10, seed=0)] == [2]
    half = completeness(questions([item("q2")], [traj("q2", 0, 1, "answered", True), traj("q2", 1, 2, "failed")],
                                  [4], k=2), [4], k=2)  # fmt: skip
    assert half.banner() == (
        "INCOMPLETE EVALUATION: 1 of 2 samples are not scored (1 failed, 0 never ran; rerun the same command to "
        "play them); 1 question has fewer than 2 samples per row, each scored over those it has"
    )
    full = completeness(questions([item("q1")], runs[:1] + [traj("q1", 1, 2, "answered")], [4], k=2), [4], k=2)
    assert full.complete and full.banner() is None


@pytest.mark.parametrize(
    ("t", "running"),
    [
        (traj("a", 0, 4, "over_turn"), True),  # its last turn a zoom never executed: the turn cap stopped it
        (traj("a", 0, 4, "malformed"), True),  # an error turn was its last allowed turn
        (traj("a", 0, 3, "answered", True), False),
        (traj("a", 0, 1, "void"), False),
        (traj("a", 0, 0, "over_turn"), False),  # the context budget ended it before its first turn
    ],
)
def test_which_trajectories_a_larger_budget_plays_on(t: Trajectory, running: bool) -> None:
    assert still_running(t) is running


def test_the_context_budget_ending_a_trajectory_is_not_the_turn_cap() -> None:
    t = traj("a", 0, 3, "over_turn")
    t.turns[-1].observation, t.turns[-1].box_px = 3, [0, 0, 10, 10]  # its last zoom was executed
    assert not still_running(t)
    t.turns[-1].observation, t.turns[-1].error = None, "box outside the image"  # executed, refused
    assert not still_running(t)


def test_each_benchmark_category_is_a_slice() -> None:
    items = [item("v1", kind="direct_attributes"), item("v2", kind="relative_position"),
             item("v3", kind="relative_position")]  # fmt: skip
    runs = [traj("v1", 0, 1, "answered", True), traj("v2", 0, 1, "answered", False),
            traj("v3", 0, 1, "answered", True)]  # fmt: skip
    groups = group_results(questions(items, runs, [4], k=1), [4], resamples=10, seed=0)
    by_name = {g.name: (g.questions, g.rows[0].avg_at_k) for g in groups}
    assert by_name == {"all": (3, pytest.approx(2 / 3)), "kind=direct_attributes": (1, 1.0),
                       "kind=relative_position": (2, 0.5)}  # fmt: skip
