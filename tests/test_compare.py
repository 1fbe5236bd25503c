"""`minio3 compare` on real evals against loopback policies: the table is the difference of the evals' own
scores.parquet, the paired intervals are seeded and behave as a hand-worked case says, different question
sets are refused in one line (or paired on the shared ones when asked), and the viewer shows the table."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from loopback_teacher import Fault
from PIL import Image
from test_eval import BOATS, KITE, SIGN, dataset, run_eval
from typer.testing import CliRunner
from view_fixtures import text_of

from cli import app
from minio3_data.records import read_items, write_items
from pipelines.compare.paired import paired_difference
from pipelines.view import build_site

runner = CliRunner()

# a better policy than test_eval's PLANS: fewer zooms, fewer wrong answers (k = 4; the sign question's two
# option cycles take 4 plans each); one plan answers only at turn 6, which the budget 8 alone scores
BETTER = {
    KITE: [(0, "red"), (0, "red"), (1, "red"), (3, "blue")],
    BOATS: [(0, "3"), (1, "3"), (5, "3"), (None, None)],
    SIGN: [(0, "dog"), (0, "dog"), (1, "dog"), (0, "cat"), (0, "dog"), (2, "dog"), (6, "dog"), (1, "dog")],
}
SHARED_BUDGETS = [1, 2, 4]
SLICES = {  # question groups of test_eval's dataset by slice (the sign question's two rows are one)
    "all": ["kite", "boats", "sign"],
    "difficulty=easy": ["kite"],
    "difficulty=hard": ["boats", "sign"],
    "source=alpha": ["kite", "boats"],
    "source=beta": ["sign"],
}


@pytest.fixture(scope="module")
def evals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Under one root: the dataset, eval `a` (PLANS at budgets 1, 2, 4), eval `b` (BETTER at 1, 2, 4, 8)."""
    root = tmp_path_factory.mktemp("compare")
    data = dataset(root / "data")
    run_eval(data, root / "a", SHARED_BUDGETS)
    run_eval(data, root / "b", [*SHARED_BUDGETS, 8], plans=BETTER)
    return root


def scores(eval_dir: Path) -> dict[tuple[str, int], float]:
    table = pq.read_table(eval_dir / "scores.parquet").to_pydict()
    return {(q, b): s for q, b, s in zip(table["question"], table["budget"], table["score"])}


def compare_cli(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, ["compare", *map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def md_rows(path: Path) -> dict[tuple[str, str], list[str]]:
    """compare.md's table rows: (group, eval) -> the cells by budget."""
    rows = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 3 + len(SHARED_BUDGETS) and cells[1].isdigit():
            rows[(cells[0], cells[2])] = cells[3:]
    return rows


def test_table_is_the_difference_of_the_evals_own_scores(evals: Path) -> None:
    code, output = compare_cli(evals / "a", evals / "b", "--out", evals / "ab")
    assert code == 0, output
    record = json.loads((evals / "ab/compare.json").read_text())
    a, b = scores(evals / "a"), scores(evals / "b")
    assert record["baseline"] == "a" and record["questions"] == 3  # the sign question's two cycles are one
    assert record["budgets"] == SHARED_BUDGETS and record["dropped_budgets"] == {"b": [8]}
    assert list(record["groups"]) == sorted(SLICES)
    rows = md_rows(evals / "ab/compare.md")
    nonzero = 0
    for name, members in SLICES.items():
        group = record["groups"][name]
        assert group["questions"] == len(members)
        for budget in SHARED_BUDGETS:
            mean_a = np.mean([a[(q, budget)] for q in members])
            mean_b = np.mean([b[(q, budget)] for q in members])
            diff = group["difference"]["b"][str(budget)]
            assert group["avg_at_k"]["a"][str(budget)] == pytest.approx(mean_a)
            assert group["avg_at_k"]["b"][str(budget)] == pytest.approx(mean_b)
            assert diff["point"] == pytest.approx(mean_b - mean_a), (name, budget)
            lo, hi = diff["ci95"]
            assert lo <= diff["point"] <= hi
            cell = rows[(name, "b - a")][SHARED_BUDGETS.index(budget)]
            assert cell.startswith(f"{100 * (mean_b - mean_a):+.1f} ["), (name, budget, cell)
            nonzero += diff["point"] != 0
    assert nonzero > 0  # the policies differ
    # the baseline's band is its own interval: the one its results.json records, on the same questions
    own = json.loads((evals / "a/results.json").read_text())["groups"]["all"]["by_budget"]
    band = record["evals"][0]["ci95_all"]
    assert band == {str(x): pytest.approx(own[str(x)]["ci95"]) for x in SHARED_BUDGETS}
    assert "budgets left out (not scored by every eval): b: 8" in output


def test_same_seed_gives_the_same_intervals(evals: Path) -> None:
    runs = [evals / "s1", evals / "s2"]
    for out in runs:
        code, output = compare_cli(evals / "a", evals / "b", "--out", out, "--seed", 3, "--bootstrap", 500)
        assert code == 0, output
    first, again = ((out / "compare.json").read_text() for out in runs)
    assert first == again
    interval = json.loads(first)["interval"]
    assert (interval["resamples"], interval["seed"]) == (500, 3)
    # three questions allow few distinct resamples; fifty show that the seed, not chance, fixes the interval
    rng = np.random.default_rng(1)
    a, b = rng.random((50, 3)), rng.random((50, 3))
    seven, again, eight = (paired_difference(a, b, "b", 500, seed) for seed in (7, 7, 8))
    assert (seven.lo.tolist(), seven.hi.tolist()) == (again.lo.tolist(), again.hi.tolist())
    assert seven.lo.tolist() != eight.lo.tolist()


def test_paired_interval_worked_by_hand() -> None:
    a = np.array([[0.0], [0.25], [0.5], [0.5]])
    better = a + np.array([[0.25], [0.5], [0.25], [0.25]])  # B beats A on every question
    d = paired_difference(a, better, "b", 2000, 0)
    assert d.point[0] == pytest.approx(0.3125)
    # every resample's mean difference lies between the smallest and the largest per-question difference
    assert 0.25 <= d.lo[0] < d.point[0] < d.hi[0] <= 0.5
    # the same scores in another order: equal means, but on each question one eval is 0.5 ahead of the other
    first, second = np.array([[0.0], [0.5], [0.0], [0.5]]), np.array([[0.5], [0.0], [0.5], [0.0]])
    swapped = paired_difference(first, second, "b", 2000, 0)
    assert swapped.point[0] == 0 and swapped.lo[0] < 0 < swapped.hi[0]


def subset_eval(evals: Path, name: str, keep: int, rename: str = "") -> Path:
    """An eval (PLANS) of a copy of the dataset holding its first `keep` rows, ids prefixed with `rename`."""
    data = evals / f"data-{name}"
    shutil.copytree(evals / "data", data)
    items = read_items(data / "test.parquet")[:keep]
    renamed = []
    for it in items:
        group = it.question_group and rename + it.question_group
        renamed.append(dataclasses.replace(it, id=rename + it.id, question_group=group))
    write_items(data / "test.parquet", renamed)
    run_eval(data, evals / name, SHARED_BUDGETS)
    return evals / name


def test_different_question_sets_are_refused_unless_intersection(evals: Path) -> None:
    fewer = subset_eval(evals, "fewer", 2)  # kite and boats: the sign question is left out
    code, output = compare_cli(evals / "a", fewer, "--out", evals / "refused")
    assert code == 2 and len(output.strip().splitlines()) == 1
    assert "0 only in fewer, 1 only in a" in output and "--intersection" in output
    assert not (evals / "refused").exists()

    code, output = compare_cli(evals / "a", fewer, "--out", evals / "shared", "--intersection")
    assert code == 0, output
    record = json.loads((evals / "shared/compare.json").read_text())
    assert record["questions"] == 2 and record["left_out_questions"] == {"a": 1}
    a, c = scores(evals / "a"), scores(fewer)
    shared = ["kite", "boats"]
    want = np.mean([c[(q, 4)] for q in shared]) - np.mean([a[(q, 4)] for q in shared])
    assert record["groups"]["all"]["difference"]["fewer"]["4"]["point"] == pytest.approx(want)
    assert "questions left out (not in every eval, --intersection): a: 1" in output


def test_evals_of_different_datasets_are_refused(evals: Path) -> None:
    other = subset_eval(evals, "other", 4, rename="x-")
    code, output = compare_cli(evals / "a", other, "--out", evals / "nothing", "--intersection")
    assert code == 2 and len(output.strip().splitlines()) == 1
    assert "no question is in every eval" in output


def test_a_dir_that_is_not_a_whole_eval_is_one_line(evals: Path) -> None:
    lost, torn = evals / "lost", evals / "torn"
    for copy in (lost, torn):
        shutil.copytree(evals / "a", copy)
    (lost / "scores.parquet").unlink()
    table = pq.read_table(evals / "a/scores.parquet")
    pq.write_table(table.slice(1), torn / "scores.parquet")  # the first question's first budget is gone
    for bad, says in ((evals / "data", "no results.json"), (lost, "scores.parquet: missing"),
                      (torn, "lacks a score at some budget")):  # fmt: skip
        code, output = compare_cli(evals / "a", bad, "--out", evals / "bad")
        assert code == 2 and len(output.strip().splitlines()) == 1 and says in output, output


def test_an_incomplete_eval_is_named_first_on_the_console_and_in_the_table(evals: Path) -> None:
    run_eval(evals / "data", evals / "partial", SHARED_BUDGETS, fault=Fault.server_error(500))
    assert json.loads((evals / "partial/results.json").read_text())["complete"] is False
    code, output = compare_cli(evals / "a", evals / "partial", "--out", evals / "a-partial")
    assert code == 0, output
    banner = "INCOMPLETE EVALUATION: partial (1 of 16 samples are not scored (1 failed"
    assert output.splitlines()[0].startswith(banner), output
    assert (evals / "a-partial/compare.md").read_text().startswith(f"**{banner}")
    assert [e["complete"] for e in json.loads((evals / "a-partial/compare.json").read_text())["evals"]] == [
        True, False]
    code, output = compare_cli(evals / "a", evals / "b", "--out", evals / "whole")
    assert "INCOMPLETE" not in output + (evals / "whole/compare.md").read_text()


def test_plot_and_viewer_page(evals: Path) -> None:
    if not (evals / "ab").exists():
        assert compare_cli(evals / "a", evals / "b", "--out", evals / "ab")[0] == 0
    with Image.open(evals / "ab/compare.png") as png:
        png.verify()
        assert png.format == "PNG"
    summary = build_site(evals / "ab", evals / "site", workers=1, progress=False)
    assert summary.kind == "compare" and summary.entries == 2
    index = (evals / "site/index.html").read_text()
    record = json.loads((evals / "ab/compare.json").read_text())
    d = record["groups"]["all"]["difference"]["b"]["4"]
    cell = f"{100 * d['point']:+.1f} [{100 * d['ci95'][0]:+.1f}, {100 * d['ci95'][1]:+.1f}]"
    rows = [text_of(r) for r in index.split("<tr>")]
    assert any(r.startswith("all3b - a") and cell in r for r in rows), cell
    assert (evals / "site/img/compare/compare.png").read_bytes() == (evals / "ab/compare.png").read_bytes()
