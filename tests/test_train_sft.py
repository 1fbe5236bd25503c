"""`minio3 train-sft`: the launch it builds, its streaming and exit code, the model family it trains (the export's,
refused for a model dir of another), the processor view it trains Qwen3-VL through, and (slow) real LLaMA-Factory
training of a tiny random-weight Qwen2.5-VL and Qwen3-VL (Instruct and Thinking) on an export, on CPU."""

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
from minio3_data.families import get_family
from minio3_data.families.model_dir import needs_view
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


def model_dir(root: Path, model_type: str, min_pixels: int) -> Path:
    """A local model dir as far as train-sft reads it: config.json and the image processor's config."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"model_type": model_type}))
    (root / "preprocessor_config.json").write_text(
        json.dumps({"size": {"shortest_edge": min_pixels, "longest_edge": 16_777_216}, "patch_size": 16})
    )
    return root


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


def test_the_variant_picks_the_yaml(qwen3_export: Path, export: Path, fake_cli: Path, tmp_path: Path) -> None:
    model = str(model_dir(tmp_path / "m", "qwen3_vl", 4096))  # the family's bounds already: no view
    assert sft_launch(qwen3_export, model, fake_cli).config.name == "sft_qwen3_vl.yaml"
    thinking = sft_launch(qwen3_export, model, fake_cli, variant="thinking")
    assert thinking.argv[2:4] == [str(qwen3_export / "sft_qwen3_vl_thinking.yaml"), f"model_name_or_path={model}"]
    with pytest.raises(BadInputError, match="--variant 'thinking': the qwen2.5-vl family is trained as instruct"):
        sft_launch(export, "m", fake_cli, variant="thinking")


@pytest.mark.parametrize("exported, model_type", [("qwen2.5-vl", "qwen3_vl"), ("qwen3-vl", "qwen2_5_vl")])
def test_training_a_model_of_another_family_than_the_exports_is_one_line(
    export: Path, qwen3_export: Path, tmp_path: Path, fake_cli: Path, exported: str, model_type: str
) -> None:
    root = export if exported == "qwen2.5-vl" else qwen3_export
    model = model_dir(tmp_path / "model", model_type, 65536)
    res = CliRunner().invoke(app, ["train-sft", "--export", str(root), "--model", str(model), "--llamafactory-cli",
                                   str(fake_cli), "--", f"output_dir={tmp_path / 'out'}"])  # fmt: skip
    other = "qwen3-vl" if exported == "qwen2.5-vl" else "qwen2.5-vl"
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert f"is a {other} model (its config.json), but the export {root} is for {exported}" in res.output
    assert "args:" not in res.output and not (tmp_path / "out").exists()


def test_qwen3vl_trains_through_a_view_with_the_familys_processor_minimum(
    qwen3_export: Path, tmp_path: Path, fake_cli: Path
) -> None:
    """Qwen3-VL's stock processor minimum (65,536 px) would enlarge every crop of the protocol: a local model dir
    is trained through a view with min_pixels 4,096, written into output_dir when the run starts (not by a dry
    run); a hub id, which minio3 cannot rewrite, is refused."""
    model = model_dir(tmp_path / "qwen3-vl-8b", "qwen3_vl", 65536)
    out = tmp_path / "saves"
    args = ["train-sft", "--export", str(qwen3_export), "--model", str(model), "--llamafactory-cli", str(fake_cli)]
    view = out / "minio3_base_model"
    dry = CliRunner().invoke(app, [*args, "--dry-run", "--", f"output_dir={out}"])
    assert dry.exit_code == 0 and f"model_name_or_path={view}" in dry.output and "4,096-16,777,216 px" in dry.output
    assert not out.exists()
    run = CliRunner().invoke(app, [*args, "--", f"output_dir={out}"])
    assert run.exit_code == 3 and f"model_name_or_path={view}" in run.output, run.output
    assert json.loads((view / "preprocessor_config.json").read_text())["size"]["shortest_edge"] == 4096
    assert (view / "config.json").resolve() == (model / "config.json").resolve()
    hub = CliRunner().invoke(app, ["train-sft", "--export", str(qwen3_export), "--model", "Qwen/Qwen3-VL-8B-Instruct",
                                   "--dry-run"])  # fmt: skip
    assert hub.exit_code == 2 and "download it first (hf download Qwen/Qwen3-VL-8B-Instruct" in hub.output


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
def tiny_models(lf_cli: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny random-weight models by family, each built on first use; Qwen3-VL's with the real checkpoint's
    processor bounds (tests/tiny_qwen3vl.py --stock-pixels), which train-sft must not train with."""

    class Models(dict[str, Path]):
        def __missing__(self, family: str) -> Path:
            options = ("--stock-pixels",) if family == "qwen3-vl" else ()
            self[family] = build_tiny_model(lf_cli, tmp_path_factory.mktemp(family), family, *options)
            return self[family]

    return Models()


@pytest.mark.slow
@pytest.mark.timeout(LF_TEST_TIMEOUT_S)
@pytest.mark.parametrize(
    "family, fmt, variant",
    [("qwen2.5-vl", "json", "instruct"), ("qwen2.5-vl", "parquet", "instruct"), ("qwen3-vl", "json", "instruct"),
     ("qwen3-vl", "parquet", "thinking")],
)  # fmt: skip
def test_llamafactory_trains_two_steps_on_every_exported_row(
    family: str, fmt: str, variant: str, lf_cli: Path, tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    run = make_run(tmp_path)
    export = tmp_path / "export"
    exported = subprocess.run(
        [str(MINIO3), "export-llamafactory", "--run", str(run), "--out", str(export), "--format", fmt,
         "--image-max-pixels", "12544", "--image-min-pixels", "3136", "--cutoff-len", "4096", "--workers", "2",
         "--model-family", family],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    summary = json.loads((export / "export.json").read_text())
    assert summary["rows_written"] == 4 and summary["excluded"]["count"] == 0 and summary["model_family"] == family
    trained = subprocess.run(
        [str(MINIO3), "train-sft", "--export", str(export), "--model", str(tiny_models[family]), "--llamafactory-cli",
         str(lf_cli), "--variant", variant, "--", "max_steps=2", "deepspeed=null", "bf16=false", "flash_attn=auto", f"output_dir={tmp_path / 'save'}",
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
    assert (tmp_path / "save" / "minio3_base_model").is_dir()  # trained with the family's processor bounds,
    assert not needs_view(tmp_path / "save", get_family(family))  # which the checkpoint carries on into RL and eval
