"""`minio3 train-sft`: the launch it builds, its streaming and exit code, and (slow) real LLaMA-Factory training
of a tiny random-weight Qwen2.5-VL on an export, on CPU."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from export_fixtures import make_run
from lf_env import LF_TEST_TIMEOUT_S, build_tiny_model, llamafactory_cli, offline_env
from typer.testing import CliRunner

from cli import app
from minio3_data.errors import BadInputError
from pipelines.export_llamafactory import export_run
from train.sft import overrides, run_sft, sft_launch

MINIO3 = Path(sys.executable).parent / "minio3"
FAKE_CLI = """#!/bin/sh
echo "args: $*"
echo "env: FORCE_TORCHRUN=$FORCE_TORCHRUN NPROC_PER_NODE=$NPROC_PER_NODE"
printf 'step 1/2\\r'
printf 'step 2/2\\n'
exit 3
"""


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("sft")
    out = tmp / "export"
    export_run(make_run(tmp), out, workers=1, progress=False)
    return out


@pytest.fixture()
def fake_cli(tmp_path: Path) -> Path:
    path = tmp_path / "llamafactory-cli"
    path.write_text(FAKE_CLI)
    path.chmod(0o755)
    return path


def test_launch_trains_the_exports_yaml_with_model_and_location_overrides(
    export: Path, fake_cli: Path
) -> None:
    launch = sft_launch(
        export, "Qwen/Qwen2.5-VL-7B-Instruct", fake_cli, extra=["max_steps=5", "--bf16=false"]
    )
    assert launch.argv == [
        str(fake_cli), "train", str(export / "sft_qwen2_5_vl.yaml"),
        "model_name_or_path=Qwen/Qwen2.5-VL-7B-Instruct", f"dataset_dir={export}", f"media_dir={export}",
        "max_steps=5", "bf16=false",
    ]  # fmt: skip
    assert launch.env == {}


def test_nproc_uses_llamafactorys_torchrun_launch(export: Path, fake_cli: Path) -> None:
    launch = sft_launch(export, "m", fake_cli, nproc=8)
    assert launch.env == {"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "8"}
    assert launch.command().startswith("FORCE_TORCHRUN=1 NPROC_PER_NODE=8 ")
    with pytest.raises(BadInputError, match="splits arguments on spaces"):
        sft_launch(export, "/models/my model", fake_cli, nproc=2)
    with pytest.raises(BadInputError, match="at least 1"):
        sft_launch(export, "m", fake_cli, nproc=0)


def test_overrides_must_be_key_value_and_yaml_booleans_stay_strings() -> None:
    assert overrides(["save_strategy=no", "do_train=true", "--lr_scheduler_type=cosine"]) == [
        "save_strategy='no'", "do_train=true", "lr_scheduler_type=cosine",
    ]  # fmt: skip
    with pytest.raises(BadInputError, match="key=value"):
        overrides(["--max_steps", "2"])


def test_missing_export_or_cli_are_one_line_errors(
    tmp_path: Path, export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(BadInputError, match="run minio3 export-llamafactory first"):
        sft_launch(tmp_path, "m", None)
    with pytest.raises(BadInputError, match="not an executable"):
        sft_launch(export, "m", tmp_path / "nope")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BadInputError, match="not found on PATH"):
        sft_launch(export, "m", None)


def test_run_streams_the_output_and_returns_the_exit_code(
    export: Path, fake_cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_sft(sft_launch(export, "m", fake_cli, nproc=2, extra=["max_steps=2"])) == 3
    out = capsys.readouterr().out
    assert f"args: train {export}/sft_qwen2_5_vl.yaml model_name_or_path=m" in out and "max_steps=2" in out
    assert "env: FORCE_TORCHRUN=1 NPROC_PER_NODE=2" in out and "step 1/2\rstep 2/2\n" in out


def test_cli_exits_with_llamafactorys_code_and_dry_run_runs_nothing(export: Path, fake_cli: Path) -> None:
    runner = CliRunner()
    args = ["train-sft", "--export", str(export), "--model", "m", "--llamafactory-cli", str(fake_cli)]
    result = runner.invoke(app, [*args, "--", "max_steps=2"])
    assert result.exit_code == 3 and "args: train" in result.output
    dry = runner.invoke(app, [*args, "--dry-run", "--", "max_steps=2"])
    assert dry.exit_code == 0 and "args:" not in dry.output
    assert "max_steps=2" in dry.output and 'template: "qwen2_vl"' in dry.output
    bad = runner.invoke(app, [*args, "--", "max_steps"])
    assert bad.exit_code == 2 and "key=value" in bad.output


def test_dry_run_prints_where_llamafactory_is_not_installed(
    tmp_path: Path, export: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    dry = CliRunner().invoke(app, ["train-sft", "--export", str(export), "--model", "m", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert dry.output.startswith(f"llamafactory-cli train {export / 'sft_qwen2_5_vl.yaml'} model_name_or_path=m")


# --- real LLaMA-Factory, CPU ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lf_cli() -> Path:
    """LLaMA-Factory's CPU venv, built by tools/llamafactory-cpu-env.sh on first use (minutes), then reused."""
    return llamafactory_cli()


def test_training_that_cannot_run_fails_under_ci_and_skips_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "env.sh"
    broken.write_text("echo 'python3: command not found' >&2; exit 127\n")
    slow = tmp_path / "slow.sh"
    slow.write_text("sleep 30; echo /never\n")
    monkeypatch.setenv("CI", "1")
    with pytest.raises(
        pytest.fail.Exception, match="must run, but .*exit code 127: python3: command not found"
    ):
        llamafactory_cli(broken)
    with pytest.raises(pytest.fail.Exception, match="not found"):
        llamafactory_cli(tmp_path / "missing.sh")
    with pytest.raises(pytest.fail.Exception, match="did not finish within 0.5 s"):
        llamafactory_cli(slow, timeout=0.5)  # returns at once: the sleep is killed with its shell
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="exit code 127"):
        llamafactory_cli(broken)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="not found"):
        llamafactory_cli(tmp_path / "missing.sh")


@pytest.fixture(scope="session")
def tiny_model(lf_cli: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(lf_cli, tmp_path_factory.mktemp("tiny-qwen25vl"))


@pytest.mark.slow
@pytest.mark.timeout(LF_TEST_TIMEOUT_S)
@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_llamafactory_trains_two_steps_on_every_exported_row(
    fmt: str, lf_cli: Path, tiny_model: Path, tmp_path: Path
) -> None:
    run = make_run(tmp_path)
    export = tmp_path / "export"
    exported = subprocess.run(
        [str(MINIO3), "export-llamafactory", "--run", str(run), "--out", str(export), "--format", fmt,
         "--image-max-pixels", "12544", "--image-min-pixels", "3136", "--cutoff-len", "4096", "--workers", "2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    summary = json.loads((export / "export.json").read_text())
    assert summary["rows_written"] == 4 and summary["excluded"] == {}
    trained = subprocess.run(
        [str(MINIO3), "train-sft", "--export", str(export), "--model", str(tiny_model), "--llamafactory-cli", str(lf_cli),
         "--", "max_steps=2", "deepspeed=null", "bf16=false", "flash_attn=auto", f"output_dir={tmp_path / 'save'}",
         "preprocessing_num_workers=1", "logging_steps=1", "save_strategy=no", "report_to=none",
         "per_device_train_batch_size=2", "gradient_accumulation_steps=1"],
        capture_output=True, text=True, timeout=600, env=offline_env(), check=False,
    )  # fmt: skip
    log = trained.stdout + trained.stderr
    assert trained.returncode == 0, log[-5000:]
    losses = re.findall(r"'loss': '?([0-9.]+)", log)
    assert len(losses) == 2 and all(float(v) > 0 for v in losses)
    examples = re.search(r"Num examples = ([\d,]+)", log)
    assert (
        examples and int(examples.group(1).replace(",", "")) == summary["rows_written"]
    )  # LF dropped nothing
    assert "abnormal example" not in log and "Dropped" not in log
