"""`minio3 eval` end to end: a loopback policy server that answers per a script, the budget table checked
against values computed by hand, one pass equal to a pass per budget, resume, and one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from datasets import load_dataset
from loopback_teacher import Fault, LoopbackTeacher, Plan, planned
from PIL import Image
from typer.testing import CliRunner

from cli import app
from minio3_data.records import ProbeItem, write_items
from minio3_data.teacher_options import TeacherOptions
from pipelines.eval import eval_config, evaluate

runner = CliRunner()

KITE, BOATS, SIGN = "What colour is the kite?", "How many boats are there?", "Which animal is on the sign?"
# one plan per trajectory, (zooms, answer): the kite's and the boats' 4 samples, and the 8 samples of the sign
# question's two option cycles (rows c0 and c1: the answer "dog" is right in both, whatever its letter)
PLANS: dict[str, list[Plan]] = {
    KITE: [(0, "red"), (2, "red"), (1, "blue"), (5, "red")],
    BOATS: [(1, "3"), (1, "three"), (None, None), (0, None)],
    SIGN: [(0, "dog"), (0, "cat"), (3, "dog"), (None, None), (1, "dog"), (1, "dog"), (2, "cat"), (4, "dog")],
}
BUDGETS = [1, 2, 4]
# Worked from PLANS (n = turns at the largest budget, 4): a sample is correct at budget t when it answered
# right within t turns, over-turn when it had not answered by turn t (or never did), and has min(n, t) turns.
#   kite  n = 1 ok, 3 ok, 2 wrong, 4 over          -> score 1/4, 1/4, 2/4
#   boats n = 2 ok, 2 ok, 4 over, 1 void           -> score 0, 2/4, 2/4
#   sign  n = 1 ok, 1 wrong, 4 ok, 4 over, 2 ok, 2 ok, 3 wrong, 4 over  -> score 1/8, 3/8, 4/8
EXPECTED = {
    "all": [(1 / 4 + 0 + 1 / 8) / 3, (1 / 4 + 2 / 4 + 3 / 8) / 3, (2 / 4 + 2 / 4 + 4 / 8) / 3],
    "difficulty=easy": [1 / 4, 1 / 4, 2 / 4],
    "difficulty=hard": [(0 + 1 / 8) / 2, (2 / 4 + 3 / 8) / 2, (2 / 4 + 4 / 8) / 2],
    "source=alpha": [(1 / 4 + 0) / 2, (1 / 4 + 2 / 4) / 2, (2 / 4 + 2 / 4) / 2],
    "source=beta": [1 / 8, 3 / 8, 4 / 8],
}
OVER_TURN = [(3 + 3 + 6) / 16, (2 + 1 + 4) / 16, (1 + 1 + 2) / 16]
MEAN_TURNS = [16 / 16, (7 + 7 + 14) / 16, (10 + 9 + 21) / 16]


def dataset(root: Path) -> Path:
    """A dataset dir: an open kite question, an open boats question, a sign question in two option cycles."""
    (root / "images").mkdir(parents=True)
    for name, colour in (("a", (200, 40, 40)), ("b", (40, 40, 200))):
        Image.new("RGB", (640, 480), colour).save(root / "images" / f"{name}.jpg")
    common = {"width": 640, "height": 480, "target_bbox": [300.0, 200.0, 340.0, 240.0]}
    write_items(root / "test.parquet", [
        ProbeItem("kite", "images/a.jpg", KITE, "red", difficulty="easy", source="alpha", **common),
        ProbeItem("boats", "images/a.jpg", BOATS, "3", difficulty="hard", source="alpha", **common),
        ProbeItem("c0", "images/b.jpg", SIGN, "B", ["cat", "dog"], "hard", source="beta", question_group="sign", **common),
        ProbeItem("c1", "images/b.jpg", SIGN, "A", ["dog", "cat"], "hard", source="beta", question_group="sign", **common),
    ])  # fmt: skip
    return root


def run_eval(
    data: Path, out: Path, budgets: list[int], fault: Fault | None = None, plans: dict[str, list[Plan]] = PLANS,
    **options: Any,
) -> tuple[object, int]:
    """An evaluation against a fresh server playing `plans` (`fault` on its first request, never retried);
    (summary, requests the server answered). `options` are eval_config's."""
    with LoopbackTeacher(planned(plans)) as srv:
        if fault is not None:
            srv.inject(fault)
        client = TeacherOptions(model="policy", base_urls=[srv.openai_url], api_key_env="NONE", timeout=5.0,
                                max_retries=0 if fault else 2)
        settings = {"k": 4, "teacher": "openai", "progress": False, "concurrency": 8, "client": client}
        return evaluate(eval_config(data, out, budgets=budgets, **(settings | options))), srv.count


def table(summary) -> dict[str, list[tuple]]:
    return {
        g.name: [(r.budget, r.avg_at_k, r.ci95, r.over_turn_rate, r.mean_turns) for r in g.rows]
        for g in summary.groups
    }


def test_full_eval_against_a_script_server_gives_the_hand_computed_table(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    summary, requests = run_eval(data, tmp_path / "run", BUDGETS)
    got = {g.name: g for g in summary.groups}
    assert list(got) == list(EXPECTED)
    for name, values in EXPECTED.items():
        assert [r.avg_at_k for r in got[name].rows] == pytest.approx(values), name
        assert all(r.ci95[0] <= r.avg_at_k <= r.ci95[1] for r in got[name].rows)
    assert (
        got["all"].questions == 3
        and got["all"].samples == 16
        and got["source=beta"].rows[2].ci95 == (0.5, 0.5)
    )
    assert [r.over_turn_rate for r in got["all"].rows] == pytest.approx(OVER_TURN)
    assert [r.mean_turns for r in got["all"].rows] == pytest.approx(MEAN_TURNS)
    assert requests == 10 + 9 + 21  # one request per turn at the largest budget, nothing more

    out = tmp_path / "run"
    results = json.loads((out / "results.json").read_text())
    assert results["k"] == 4 and results["budgets"] == BUDGETS and results["protocol"] == "released"
    assert results["groups"]["all"]["by_budget"]["4"]["avg_at_k"] == pytest.approx(0.5)
    assert results["attempts"]["status"] == {"answered": 11, "over_turn": 4, "void": 1}
    assert "| all | 3 | 12.5 [" in (out / "results.md").read_text()
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    scores = load_dataset("parquet", data_files=str(out / "scores.parquet"), split="train")
    assert len(scores) == 3 * len(BUDGETS) and set(scores["question"]) == {"kite", "boats", "sign"}
    trajs = load_dataset("parquet", data_files=str(out / "trajectories.parquet"), split="train")
    assert len(trajs) == 16


def test_one_pass_scores_every_budget_as_a_pass_per_budget_would(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    single, single_requests = run_eval(data, tmp_path / "single", BUDGETS)
    per_budget, requests = {}, 0
    for b in BUDGETS:
        summary, n = run_eval(data, tmp_path / f"b{b}", [b])
        requests += n
        for name, rows in table(summary).items():
            per_budget.setdefault(name, []).extend(rows)
    assert table(single) == per_budget  # intervals included: same questions, same seed
    assert requests == 16 + 28 + 40 and single_requests == 40


def test_rerun_resumes_without_requests_and_rescores_other_budgets(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    first, _ = run_eval(data, tmp_path / "run", BUDGETS)
    again, requests = run_eval(data, tmp_path / "run", [2, 3, 4])  # same largest budget: the same run
    assert requests == 0 and again.sampling.attempted_now == 0
    assert table(again)["all"][2] == table(first)["all"][2] and [r.budget for r in again.groups[0].rows] == [
        2,
        3,
        4,
    ]
    smaller, requests = run_eval(data, tmp_path / "run", [1, 2])  # a smaller largest budget: the same pass
    assert requests == 0 and smaller.max_turns == 4 and table(smaller)["all"] == table(first)["all"][:2]
    res = runner.invoke(app, ["eval", "--dataset", str(data), "--out", str(tmp_path / "run"), "--k", "4",
                              "--max-turns", "1,2,4", "--teacher", "openai", "--model", "policy", "--api-key-env",
                              "NONE", "--base-url", "http://127.0.0.1:9/v1", "--temperature", "0.5"])  # fmt: skip
    assert res.exit_code == 2 and "made with different temperature; resume with the same options (it has " \
        "temperature 1.0, not 0.5) or pick another --out" in res.output


def test_cli_eval_with_the_scripted_teacher_prints_the_table(tiny_dataset: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["eval", "--dataset", str(tiny_dataset), "--out", str(tmp_path / "e"), "--k", "2",
                              "--max-turns", "2,4,8"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "all (3 questions) Avg@2 % by turn budget: 2: " in res.output and "results.md" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-turns", "4,eight"], "--max-turns '4,eight': use turn budgets as whole numbers"),
        (["--max-turns", "0"], "--max-turns '0': use turn budgets as whole numbers"),
        (["--k", "0"], "--k 0: must be a whole number of samples per question, at least 1"),
        (["--protocol", "v2"], "--protocol 'v2': use one of released, chain-of-focus, deepeyes"),
    ],
)
def test_bad_options_are_one_line(tiny_dataset: Path, tmp_path: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["eval", "--dataset", str(tiny_dataset), "--out", str(tmp_path / "e"), *args])
    assert res.exit_code == 2 and message in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "e").exists()


def test_a_dataset_without_answers_is_one_line(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    items = [ProbeItem("q", "images/a.jpg", KITE, "", width=640, height=480)]
    write_items(data / "test.parquet", items)
    res = runner.invoke(app, ["eval", "--dataset", str(data), "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "test.parquet: no row has an answer" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_the_scripted_teacher_needs_target_boxes(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    write_items(data / "test.parquet", [ProbeItem("q", "images/a.jpg", KITE, "red", width=640, height=480)])
    res = runner.invoke(app, ["eval", "--dataset", str(data), "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "no row has a target_bbox, which the scripted teacher needs" in res.output


def test_a_failed_attempt_is_left_out_reported_and_retried_by_a_rerun(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    failed, _ = run_eval(data, tmp_path / "run", BUDGETS, fault=Fault.server_error(500))
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["attempts"]["failed"] == 1 and failed.groups[0].samples == 15
    assert list(results["attempts"]["failure_reasons"].values()) == [1]
    assert failed.sampling.failure_line().startswith("1 of 16 attempts failed: ")
    again, _ = run_eval(data, tmp_path / "run", BUDGETS)
    assert again.sampling.attempted_now == 1 and again.sampling.failure_line() is None
    assert again.groups[0].samples == 16


def eval_args(data: Path, out: Path, srv: LoopbackTeacher, *more: str) -> list[str]:
    return ["eval", "--dataset", str(data), "--out", str(out), "--k", "4", "--max-turns", "1,2,4", "--teacher",
            "openai", "--model", "policy", "--api-key-env", "NONE", "--base-url", srv.openai_url, "--max-retries",
            "0", "--concurrency", "2", *more]  # fmt: skip


def test_an_eval_with_failed_requests_says_it_is_incomplete_everywhere(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    out = tmp_path / "run"
    with LoopbackTeacher(planned(PLANS)) as srv:
        srv.inject(Fault.server_error(500), times=2)
        res = runner.invoke(app, eval_args(data, out, srv))
    assert res.exit_code == 3, res.output  # neither 0 nor bad input's 2
    first = res.output.split("\n")[1]  # after the progress bar
    assert first.startswith("INCOMPLETE EVALUATION: 2 of 16 samples are not scored (2 failed, 0 never ran")
    assert (out / "results.md").read_text().startswith("**INCOMPLETE EVALUATION: 2 of 16 samples are not scored")
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] is False and results["completeness"]["failed_samples"] == 2
    assert results["completeness"]["scored_samples"] == 14 and results["completeness"]["expected_samples"] == 16
    rows = load_dataset("parquet", data_files=str(out / "scores.parquet"), split="train").filter(
        lambda r: r["budget"] == 4)
    counts = {r["question"]: (r["samples"], r["failed"], r["missing"], r["expected"]) for r in rows}
    assert sum(c[1] for c in counts.values()) == 2 and all(s + f == e for s, f, _, e in counts.values())
    assert {q: c[3] for q, c in counts.items()} == {"kite": 4, "boats": 4, "sign": 8}
    with LoopbackTeacher(planned(PLANS)) as srv:  # the rerun plays the two failed samples: complete
        res = runner.invoke(app, eval_args(data, out, srv))
    assert res.exit_code == 0 and "INCOMPLETE" not in (out / "results.md").read_text(), res.output
    assert json.loads((out / "results.json").read_text())["complete"] is True


def test_an_eval_stopped_early_counts_the_samples_that_never_ran(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    with LoopbackTeacher(planned(PLANS)) as srv:
        res = runner.invoke(app, eval_args(data, tmp_path / "run", srv, "--max-requests", "10"))
    assert res.exit_code == 3, res.output
    done = json.loads((tmp_path / "run" / "results.json").read_text())["completeness"]
    assert done["complete"] is False and done["missing_samples"] > 0
    assert done["scored_samples"] + done["failed_samples"] + done["missing_samples"] == 16
    assert "never ran" in (tmp_path / "run" / "results.md").read_text().splitlines()[0]


def test_extending_a_budget_plays_on_only_the_unfinished_and_equals_a_fresh_pass(tmp_path: Path) -> None:
    """Concurrency 1 makes the server hand out its plans in the same order in every run, so the trajectories of
    the extended pass and of the fresh one can be compared one for one."""
    data = dataset(tmp_path / "data")
    fresh, fresh_requests = run_eval(data, tmp_path / "fresh", [1, 2, 4], concurrency=1)
    short, short_requests = run_eval(data, tmp_path / "run", [1, 2], concurrency=1)
    longer, requests = run_eval(data, tmp_path / "run", [1, 2, 4], concurrency=1)
    # still running at 2 turns (from PLANS: 4 turns at most): kite 3 and 4, boats 4, sign 4, 4, 3 and 4 turns
    assert longer.extended_from == 2 and longer.continued == 7
    assert requests == (3 + 4 + 4 + 4 + 4 + 3 + 4) - 2 * 7 == fresh_requests - short_requests
    assert table(longer) == table(fresh)  # intervals included
    read = {name: json.loads((tmp_path / name / "results.json").read_text()) for name in ("fresh", "run")}
    assert read["run"]["usage"] == read["fresh"]["usage"]  # every request counted once, none twice

    def trajectories(name: str) -> list[dict]:
        rows = load_dataset("parquet", data_files=str(tmp_path / name / "trajectories.parquet"), split="train")
        return sorted(({k: v for k, v in r.items() if k != "usage"} for r in rows), key=lambda r: r["id"])

    assert trajectories("run") == trajectories("fresh")
    again, requests = run_eval(data, tmp_path / "run", [1, 2, 4], concurrency=1)
    assert requests == 0 and again.continued == 0 and table(again) == table(fresh)
    lines = (tmp_path / "run" / "attempts.jsonl").read_text().splitlines()
    assert len(lines) == 16 + 7  # one line per attempt, and one more per trajectory played on
