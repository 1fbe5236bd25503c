"""Bad numbers and strings through the real CLI: one line naming the option, file or item (exit code 2, no
traceback), never a silent change; and where a value is fine after all, the documented behaviour."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from minio3_data.records import ProbeItem, write_items

runner = CliRunner()
SHIPPED_EXEMPLARS = Path(__file__).resolve().parents[1] / "exemplars"
SMALL_RUN = ["--limit", "1", "--samples-per-item", "1", "--target", "1"]


def refused(args: list[str], *wanted: str) -> None:
    """The command exits 2 with one line holding every `wanted` text, and no traceback."""
    res = runner.invoke(app, args)
    lines = res.output.strip().splitlines()
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert all(w in lines[0] for w in wanted) and "Traceback" not in res.output, res.output


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [
        ("--temperature", "nan", "must be a finite number, 0 or more"),  # NaN != NaN: no resume would match
        ("--limit", "-1", "must be a finite number, 0 or more"),  # items[:-1] dropped the last item
        ("--rpm", "-5", "must be a finite number above 0"),
        ("--tpm", "-1", "must be a finite number above 0"),
        ("--timeout", "nan", "must be a finite number above 0"),
        ("--timeout", "inf", "must be a finite number above 0"),
        ("--price-input", "-1", "must be a finite number, 0 or more"),
        ("--exemplars-in-context", "-1", "must be a finite number, 0 or more"),
        ("--error-rate", "1.5", "must be a share from 0 to 1"),
    ],
)
def test_synth_refuses_a_bad_number_naming_the_option(
    tiny_dataset: Path, tmp_path: Path, option: str, value: str, rule: str
) -> None:
    out = tmp_path / "run"
    refused(["synth-coldstart", "--dataset", str(tiny_dataset), "--out", str(out), *SMALL_RUN, option, value],
            f"error: {option} {value}", rule)  # fmt: skip
    assert not out.exists()  # refused before anything was started or written


@pytest.mark.parametrize("mix", ["backtrack=nan", "backtrack=-1,depth_first=1", "backtrack=0"])
def test_a_bad_mix_weight_is_one_line(tiny_dataset: Path, tmp_path: Path, mix: str) -> None:
    """NaN, negative or all-zero weights crashed curation (a NaN quota, a division by a zero sum)."""
    refused(["synth-coldstart", "--dataset", str(tiny_dataset), "--out", str(tmp_path / "run"), *SMALL_RUN,
             "--target", "2", "--mix", mix], f"error: --mix {mix!r}: use pattern=weight pairs")  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ["eval", "--temperature", "nan"],
        ["eval", "--limit", "-2"],
        ["view", "--workers", "-1"],
    ],
)
def test_other_commands_share_the_same_rules(tiny_dataset: Path, tmp_path: Path, args: list[str]) -> None:
    command, option, value = args
    where = [str(tiny_dataset)] if command == "view" else ["--dataset", str(tiny_dataset)]
    refused([command, *where, "--out", str(tmp_path / "out"), option, value], f"{option} {value}: must be")


def test_a_nan_filter_bound_is_refused(tiny_dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = runner.invoke(app, ["synth-coldstart", "--dataset", str(tiny_dataset), "--out", str(run), *SMALL_RUN])
    assert res.exit_code == 0, res.output
    refused(["view", str(run), "--out", str(tmp_path / "site"), "--filter", "turns>=nan"],
            "--filter 'turns>=nan': >= takes one number")  # fmt: skip
    res = runner.invoke(app, ["view", str(run), "--out", str(tmp_path / "site"), "--filter", "turns>=1"])
    assert res.exit_code == 0, res.output


def test_a_symlink_loop_dataset_is_one_line(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    refused(["synth-coldstart", "--dataset", str(loop), "--out", str(tmp_path / "run")], str(loop), "symlink loop")


def test_an_attempt_line_beyond_the_samples_per_item_is_set_aside(tiny_dataset: Path, tmp_path: Path) -> None:
    """A line whose sample_index the run never asks for (copied from another run, edited by hand) would count
    as an extra sample of its item: it is a damaged line, reported and moved to attempts.jsonl.bad."""
    run = tmp_path / "run"
    args = ["synth-coldstart", "--dataset", str(tiny_dataset), "--out", str(run), *SMALL_RUN]
    assert runner.invoke(app, args).exit_code == 0
    log = run / "attempts.jsonl"
    (line,) = log.read_text().splitlines()
    stray = json.loads(line) | {"sample_index": 5}
    log.write_text(f"{line}\n{json.dumps(stray)}\n")
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "attempts.jsonl: skipped 1 damaged line (line 2), moved to" in res.output
    assert log.read_text().splitlines() == [line]
    assert json.loads((run / "stats.json").read_text())["attempts"] == 1


@pytest.mark.parametrize("named", ["shipped", "copy"])
def test_the_shipped_exemplars_named_by_path_resume_the_default_run(
    tiny_dataset: Path, tmp_path: Path, named: str
) -> None:
    """An exemplar set is identified by its content: the shipped six, by path or copied, are the default set."""
    run = tmp_path / "run"
    args = ["synth-coldstart", "--dataset", str(tiny_dataset), "--out", str(run), *SMALL_RUN]
    assert runner.invoke(app, args).exit_code == 0
    exemplars = SHIPPED_EXEMPLARS
    if named == "copy":
        exemplars = tmp_path / "mine"
        shutil.copytree(SHIPPED_EXEMPLARS, exemplars)
    res = runner.invoke(app, [*args, "--exemplars", str(exemplars)])
    assert res.exit_code == 0 and "different" not in res.output, res.output
    assert json.loads((run / "run.json").read_text())["identity"]["exemplars"] == "builtin"


def test_an_edited_exemplar_set_is_another_set(tiny_dataset: Path, tmp_path: Path) -> None:
    exemplars = tmp_path / "mine"
    shutil.copytree(SHIPPED_EXEMPLARS, exemplars)
    path = exemplars / "dfs-1.json"
    path.write_text(path.read_text().replace('"id": "dfs-1"', '"id": "dfs-one"'))
    run = tmp_path / "run"
    args = ["synth-coldstart", "--dataset", str(tiny_dataset), "--out", str(run), *SMALL_RUN]
    assert runner.invoke(app, args).exit_code == 0
    refused([*args, "--exemplars", str(exemplars)], "made with different exemplars, prompts;")


def test_results_md_escapes_what_the_data_holds(tmp_path: Path) -> None:
    """A source holding `|` would split its table cell and HTML would run in a rendered results.md."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    Image.new("RGB", (640, 480), (20, 90, 160)).save(data / "images" / "a.jpg")
    source = "web|<img src=x onerror=alert(1)>"
    common = {"difficulty": "easy", "width": 640, "height": 480, "target_bbox": [300.0, 200.0, 340.0, 240.0]}
    write_items(data / "test.parquet", [
        ProbeItem("q1", "images/a.jpg", "What colour is the sky?", "blue", source=source, **common),
        ProbeItem("q2", "images/a.jpg", "What colour is the sea?", "blue", source="plain", **common),
    ])  # fmt: skip
    res = runner.invoke(app, ["eval", "--dataset", str(data), "--out", str(tmp_path / "e"), "--k", "1",
                              "--max-turns", "2,4", "--model", "a|b<b>"])  # fmt: skip
    assert res.exit_code == 0, res.output
    table = (tmp_path / "e" / "results.md").read_text()
    assert "<img" not in table and "<b>" not in table
    (row,) = [line for line in table.splitlines() if line.startswith("| source=web")]
    assert row.startswith(r"| source=web\|&lt;img src=x onerror=alert(1)&gt; | 1 | ")
    assert row.replace("\\|", "").count("|") == 5  # group, questions, two budgets: the cells are intact
    assert r"of a\|b&lt;b&gt; on" in table
