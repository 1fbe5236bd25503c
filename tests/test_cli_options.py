"""Options several commands share are declared once: the same names, help and defaults in every command, the
defaults the pipelines' own dataclasses declare, and each group reaching its pipeline whole."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

import cli
from minio3_data.teacher_options import TeacherOptions
from pipelines.eval.config import DEFAULT_BUDGETS, DEFAULT_K
from pipelines.parallel import MAX_DEFAULT_WORKERS
from pipelines.sampling.config import SynthConfig
from train.rl.budgets import MAX_IMAGES, TRAIN_MAX_TURNS, VAL_MAX_TURNS

COMMANDS: dict[str, click.Command] = typer.main.get_command(cli.app).commands  # type: ignore[attr-defined]
SHARED = {
    "teacher": (cli.TEACHER_OPTIONS, ("synth-coldstart", "eval")),
    "judge": (cli.JUDGE_OPTIONS, ("synth-coldstart", "eval", "train-rl")),
}


def option(command: str, name: str) -> click.Parameter:
    [found] = [p for p in COMMANDS[command].params if p.name == name]
    return found


@pytest.mark.parametrize("group", list(SHARED))
def test_a_shared_option_is_the_same_in_every_command(group: str) -> None:
    options, commands = SHARED[group]
    for name in options.options:
        found = [option(command, name) for command in commands]
        assert len({(p.opts[0], p.help, repr(p.default)) for p in found}) == 1, name  # type: ignore[attr-defined]


def test_defaults_are_the_ones_the_pipelines_declare() -> None:
    synth = SynthConfig(Path("data"), Path("run"))
    for name in ("max_turns", "max_images", "concurrency", "target", "samples_per_item", "max_tokens", "split"):
        assert option("synth-coldstart", name).default == getattr(synth, name), name
    assert option("synth-coldstart", "protocol").default == synth.protocol.name
    assert option("eval", "timeout").default == TeacherOptions().timeout
    assert option("eval", "max_retries").default == TeacherOptions().max_retries
    assert option("eval", "k").default == DEFAULT_K
    assert option("eval", "max_turns").default == ",".join(map(str, DEFAULT_BUDGETS))
    assert (option("train-rl", "max_turns").default, option("train-rl", "val_max_turns").default) == (
        TRAIN_MAX_TURNS, VAL_MAX_TURNS)
    assert MAX_IMAGES == synth.max_images  # the released image cap, in synthesis and in RL
    for command in ("build-visualprobe", "export-llamafactory", "view"):
        assert f"at most {MAX_DEFAULT_WORKERS}" in option(command, "workers").help  # type: ignore[attr-defined]


def test_eval_hands_its_teacher_and_judge_options_to_the_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Eval takes synthesis's teacher options (prices included) and they reach the run whole."""
    seen = []

    class Stop(Exception):
        pass

    def evaluate(cfg):  # what the command built, without sampling anything
        seen.append(cfg)
        raise Stop

    monkeypatch.setattr("pipelines.eval.evaluate", evaluate)
    result = CliRunner().invoke(cli.app, [
        "eval", "--dataset", str(tmp_path / "data"), "--out", str(tmp_path / "eval"), "--teacher", "openai",
        "--model", "policy", "--base-url", "http://a/v1", "--base-url", "http://b/v1", "--price-input", "2.5",
        "--price-output", "10", "--rpm", "60", "--judge", "openai:grader", "--judge-base-url", "http://j/v1",
        "--judge-api-key-env", "JUDGE_KEY",
    ])  # fmt: skip
    assert isinstance(result.exception, Stop), result.output
    run = seen[0].run
    assert run.client == TeacherOptions(model="policy", base_urls=["http://a/v1", "http://b/v1"], price_input=2.5,
                                        price_output=10.0, rpm=60)  # fmt: skip
    assert (run.judge, run.judge_base_urls, run.judge_api_key_env) == ("openai:grader", ["http://j/v1"], "JUDGE_KEY")
