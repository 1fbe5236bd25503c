"""`minio3 train-rl`: the dry run composes the config with verl's own Hydra config and checks, resolves every
plug-in, and writes the run dir; verl's real `main_ppo` composes the same config from it; bad input is one
line; a run streams verl's output and returns its exit code. No GPU, no download: the model dir is a tiny
Qwen2.5-VL tokenizer, image processor and config built here."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from needs_verl import require_verl
from typer.testing import CliRunner

from cli import app
from minio3_data.records import read_items, write_items

runner = CliRunner()


@pytest.fixture(scope="module")
def rl_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a local Qwen2.5-VL dir holds for verl's checks: config.json, tokenizer, image processor (no
    weights: nothing here loads them)."""
    require_verl()
    from tiny_qwen25vl import build_tokenizer
    from transformers import Qwen2_5_VLConfig
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    out = tmp_path_factory.mktemp("tiny-qwen25vl")
    build_tokenizer().save_pretrained(out)
    Qwen2VLImageProcessorPil(min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 64).save_pretrained(out)
    Qwen2_5_VLConfig().save_pretrained(out)
    return out


def _train_rl(dataset: Path, model: Path, out: Path, *args: str) -> object:
    return runner.invoke(
        app, ["train-rl", "--dataset", str(dataset), "--model", str(model), "--out", str(out), *args]
    )


def _one_line_error(res: object, *needles: str) -> None:
    out = res.output.strip()  # type: ignore[attr-defined]
    assert res.exit_code == 2, out  # type: ignore[attr-defined]
    assert "\n" not in out and "Traceback" not in out, out
    assert out.startswith("error: ") and all(n in out for n in needles), out


def test_dry_run_writes_the_run_dir_and_checks_it_with_verl(
    tiny_dataset: Path, rl_model: Path, tmp_path: Path
) -> None:
    from train.rl import plugins

    out = tmp_path / "run"
    res = _train_rl(tiny_dataset, rl_model, out, "--dry-run", "--", "trainer.total_epochs=2")
    assert res.exit_code == 0, res.output
    names = [f"{kind} {name}" for kind, values in plugins.REGISTERED.items() for name in values]
    assert names and all(n in res.output for n in names), res.output
    assert "data: 10 train / 3 validation questions" in res.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    actor = cfg["actor_rollout_ref"]["actor"]
    assert cfg["trainer"]["total_epochs"] == 2  # the user's override, over ours
    assert cfg["algorithm"]["adv_estimator"] == "minio3_masked_grpo"
    assert (
        actor["loss_agg_mode"] == "seq-mean-token-mean"
        and actor["policy_loss"]["loss_mode"] == "minio3_guarded"
    )
    assert (actor["clip_ratio_low"], actor["clip_ratio_high"], actor["optim"]["lr"]) == (0.2, 0.3, 1e-6)
    assert actor["use_kl_loss"] is False and actor["entropy_coeff"] == 0
    assert (cfg["data"]["train_batch_size"], actor["ppo_mini_batch_size"]) == (256, 32)
    assert cfg["actor_rollout_ref"]["rollout"]["n"] == 16
    assert cfg["trainer"]["v1"]["trainer_mode"] == "minio3_sync"  # verl's sync trainer with our step metrics
    assert cfg["algorithm"]["minio3_group_size"] == 16  # the estimator's G: rollout.n
    assert cfg["minio3"]["collapse"] == {"on_collapse": "warn", "baseline_steps": 5, "fraction": 0.5, "patience": 3}
    assert cfg["trainer"]["default_local_dir"] == str((out / "checkpoints").resolve())
    rows = {s: pq.read_table(out / "data" / f"{s}.parquet").to_pylist() for s in ("train", "val")}
    assert (len(rows["train"]), len(rows["val"])) == (10, 3)
    assert {r["extra_info"]["max_turns"] for r in rows["train"]} == {6}
    assert {r["extra_info"]["max_turns"] for r in rows["val"]} == {12}
    assert {r["agent_name"] for r in rows["train"]} == {
        cfg["actor_rollout_ref"]["rollout"]["agent"]["default_agent_loop"]
    }
    command = (out / "command.sh").read_text()
    assert "-m verl.trainer.main_ppo" in command and "--config-name=minio3_rl" in command
    assert command.rstrip().endswith("trainer.total_epochs=2")


def test_verls_own_entry_point_composes_the_same_config(
    tiny_dataset: Path, rl_model: Path, tmp_path: Path
) -> None:
    """`main_ppo --cfg job` is Hydra printing the config verl's trainer would start with, and exiting."""
    out = tmp_path / "run"
    assert _train_rl(tiny_dataset, rl_model, out, "--dry-run", "--loss-agg", "released").exit_code == 0
    argv = [sys.executable, "-m", "verl.trainer.main_ppo", f"--config-path={out}", "--config-name=minio3_rl",
            "trainer.total_epochs=3", "--cfg", "job", "--resolve"]  # fmt: skip
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, cwd=out, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = yaml.safe_load(proc.stdout)
    ours = yaml.safe_load((out / "config.yaml").read_text())
    ours["trainer"]["total_epochs"] = 3
    assert printed == ours


@pytest.mark.parametrize(
    "loss_agg,estimator,agg",
    [("paper", "minio3_masked_grpo", "seq-mean-token-mean"), ("released", "grpo", "seq-mean-token-mean"),
     ("token-mean", "grpo", "token-mean")],
)  # fmt: skip
def test_loss_agg_picks_the_estimator_and_aggregation(
    tiny_dataset: Path, rl_model: Path, tmp_path: Path, loss_agg: str, estimator: str, agg: str
) -> None:
    res = _train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run", "--loss-agg", loss_agg)
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert cfg["algorithm"]["adv_estimator"] == estimator
    assert cfg["actor_rollout_ref"]["actor"]["loss_agg_mode"] == agg


def test_multi_node_prints_rays_documented_path(tiny_dataset: Path, rl_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = _train_rl(tiny_dataset, rl_model, out, "--dry-run", "--nnodes", "2", "--gpus-per-node", "4")
    assert res.exit_code == 0, res.output
    for text in (res.output, (out / "command.sh").read_text()):
        assert (
            "ray start --head" in text and "ray start --address=HEAD_IP" in text and "ray job submit" in text
        )
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["trainer"]["nnodes"], cfg["trainer"]["n_gpus_per_node"]) == (2, 4)


def test_a_run_streams_verl_and_returns_its_exit_code(
    tiny_dataset: Path, rl_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """verl itself needs GPUs; a stand-in python prints what it was started with and fails with 3."""
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "started: $*"\necho "cwd: $(pwd)"\nexit 3\n')
    fake.chmod(0o755)
    from train.rl import launch

    monkeypatch.setattr(launch.sys, "executable", str(fake))
    out = tmp_path / "run"
    res = _train_rl(tiny_dataset, rl_model, out, "--", "trainer.total_epochs=1")
    assert res.exit_code == 3, res.output
    assert "started: -m verl.trainer.main_ppo" in res.output and "trainer.total_epochs=1" in res.output
    assert f"cwd: {out.resolve()}" in res.output


# --- bad input: one line, never a traceback -----------------------------------------------------------------


def test_missing_rl_extra_says_how_to_install(tiny_dataset: Path, tmp_path: Path) -> None:
    """In a fresh interpreter where torch, verl and Hydra cannot be imported: the CLI's import chain for
    train-rl must stay light enough to say so in one line."""
    blocked = "import sys\nfor m in ('torch', 'verl', 'hydra'):\n    sys.modules[m] = None\n"
    run = "from cli import app\napp(sys.argv[1:], prog_name='minio3')\n"
    argv = [sys.executable, "-c", blocked + run, "train-rl", "--dataset", str(tiny_dataset), "--model",
            str(tmp_path), "--out", str(tmp_path / "run"), "--max-turns", "0"]  # fmt: skip
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "pip install -e '.[rl]'" in proc.stderr, proc.stderr
    assert not (tmp_path / "run").exists()


def test_bad_numbers_are_refused_before_anything_runs(tiny_dataset: Path, tmp_path: Path) -> None:
    for args, needle in (
        (["--max-turns", "0"], "--max-turns 0: must be at least 1"),
        (["--val-max-turns", "-1"], "--val-max-turns -1: must be at least 1"),
        (["--rollout-n", "1"], "--rollout-n 1: GRPO compares"),
        (["--loss-agg", "mean"], "--loss-agg 'mean'"),
        (["--protocol", "v2"], "--protocol 'v2'"),
        (["--on-collapse", "halt"], "--on-collapse 'halt': use warn or stop"),
        (["--preset", "gpu-9b"], "--preset 'gpu-9b': use one of node-7b, gpu-3b, gpu-7b-lora"),
    ):
        _one_line_error(_train_rl(tiny_dataset, tmp_path, tmp_path / "run", *args), needle)


def test_a_model_dir_without_processor_or_tokenizer_is_refused(
    tiny_dataset: Path, rl_model: Path, tmp_path: Path
) -> None:
    _one_line_error(
        _train_rl(tiny_dataset, tmp_path / "absent", tmp_path / "run"), "not a local model directory"
    )
    text_only = tmp_path / "text-only"
    shutil.copytree(rl_model, text_only)
    (text_only / "preprocessor_config.json").unlink()
    _one_line_error(_train_rl(tiny_dataset, text_only, tmp_path / "run"), "no image processor")
    (text_only / "tokenizer.json").unlink()
    (text_only / "tokenizer_config.json").unlink()
    _one_line_error(_train_rl(tiny_dataset, text_only, tmp_path / "run"), "no tokenizer")


def test_a_dataset_without_answers_is_refused(tiny_dataset: Path, rl_model: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "no-answers"
    shutil.copytree(tiny_dataset, dataset)
    items = read_items(dataset / "train.parquet")
    for item in items:
        item.answer = ""
    write_items(dataset / "train.parquet", items)
    _one_line_error(_train_rl(dataset, rl_model, tmp_path / "run"), "no row has a target answer")


def test_some_bad_rows_are_skipped_and_listed(tiny_dataset: Path, rl_model: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "one-bad"
    shutil.copytree(tiny_dataset, dataset)
    items = read_items(dataset / "train.parquet")
    items[0].answer = ""
    write_items(dataset / "train.parquet", items)
    res = _train_rl(dataset, rl_model, tmp_path / "run", "--dry-run")
    assert res.exit_code == 0, res.output
    assert f"left out 1 (empty answer: 1), e.g. {items[0].id}: answer: empty" in res.output
    excluded = [
        json.loads(line) for line in (tmp_path / "run" / "data" / "excluded.jsonl").read_text().splitlines()
    ]
    assert excluded == [{"stage": "train-rl", "id": items[0].id, "reason": "empty answer", "detail": "answer: empty",
                         "split": "train"}]  # fmt: skip


def test_unknown_or_invalid_overrides_get_verls_message_in_one_line(
    tiny_dataset: Path, rl_model: Path, tmp_path: Path
) -> None:
    _one_line_error(
        _train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run", "--", "trainer.bogus=1"),
        "Could not override 'trainer.bogus'",
    )
    _one_line_error(
        _train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run", "--", "actor_rollout_ref.actor.loss_agg_mode=sum"),
        "Invalid loss_agg_mode: sum",
    )  # fmt: skip
    _one_line_error(
        _train_rl(
            tiny_dataset, rl_model, tmp_path / "run", "--dry-run", "--", "algorithm.adv_estimator=nope"
        ),
        "adv_estimator 'nope' is not registered",
    )
    _one_line_error(
        _train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run", "--", "trainer.v1.trainer_mode=nope"),
        "trainer 'nope' is not registered",
    )


def test_a_verl_trainer_without_step_metrics_is_named(tiny_dataset: Path, rl_model: Path, tmp_path: Path) -> None:
    res = _train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run", "--", "trainer.v1.trainer_mode=colocate_async")
    assert res.exit_code == 0, res.output
    assert "trainer.v1.trainer_mode=colocate_async: verl's trainer without minio3's step metrics" in res.output
    assert "minio3_colocate_async" in res.output
    ours = _train_rl(tiny_dataset, rl_model, tmp_path / "ours", "--dry-run")
    assert ours.exit_code == 0 and "without minio3's step metrics" not in ours.output


def test_a_foreign_non_empty_out_dir_is_refused(tiny_dataset: Path, rl_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "home"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    _one_line_error(_train_rl(tiny_dataset, rl_model, out, "--dry-run"), "not a train-rl run dir")
    assert _train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run").exit_code == 0
    assert _train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run").exit_code == 0  # rerun = resume


def test_the_one_gpu_smoke_script_passes_the_dry_run(
    tiny_dataset: Path, rl_model: Path, tmp_path: Path
) -> None:
    """bench/rl_smoke.sh is run by hand on a GPU; its config is checked here, so it cannot rot unseen."""
    script = Path(__file__).resolve().parents[1] / "bench" / "rl_smoke.sh"
    env = {**os.environ, "DRY_RUN": "1", "DATASET": str(tiny_dataset),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # fmt: skip
    proc = subprocess.run(
        ["bash", str(script), str(rl_model), str(tmp_path / "smoke")],
        check=False, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-2000:]
    assert "checked with verl" in proc.stdout
    cfg = yaml.safe_load((tmp_path / "smoke" / "config.yaml").read_text())
    assert (cfg["trainer"]["n_gpus_per_node"], cfg["actor_rollout_ref"]["rollout"]["n"]) == (1, 4)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed `minio3` command in its own process, as a user runs it (verl imported fresh)."""
    return subprocess.run([sys.executable, "-c", "from cli import app; app()", *args], capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def test_a_missing_model_is_one_line_that_says_how_to_get_one(tiny_dataset: Path, tmp_path: Path) -> None:
    """Right after the quickstart a newcomer has no model: the error, alone on stderr (no verl import noise
    before it), says what --model must be and how to get one."""
    require_verl()
    res = _cli("train-rl", "--dataset", str(tiny_dataset), "--model", str(tmp_path / "none"),
               "--out", str(tmp_path / "rl"), "--dry-run")  # fmt: skip
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: --model "), res.stderr
    assert "hf download Qwen/Qwen2.5-VL-7B-Instruct" in res.stderr and "tests/tiny_qwen25vl.py" in res.stderr


def test_verls_import_warnings_never_precede_our_lines(tiny_dataset: Path, rl_model: Path, tmp_path: Path) -> None:
    """An error found with verl's own config (after importing it) is still the first and only stderr line."""
    res = _cli("train-rl", "--dataset", str(tiny_dataset), "--model", str(rl_model), "--out", str(tmp_path / "rl"),
               "--dry-run", "--", "trainer.no_such_key=1")  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr


# --- the dry run refuses what would crash on the cluster, naming the key ------------------------------------


@pytest.mark.parametrize(
    "override,needle",
    [
        ("trainer.total_epochs=abc", "trainer.total_epochs: expected an integer, got 'abc'"),
        ("actor_rollout_ref.actor.clip_ratio_low=abc", "actor_rollout_ref.actor.clip_ratio_low: expected a number"),
        ("actor_rollout_ref.rollout.temperature=", "actor_rollout_ref.rollout.temperature: expected a number, got an empty value"),
        ("actor_rollout_ref.rollout.multi_turn.format=hermes", "actor_rollout_ref.rollout.multi_turn.format=hermes: "),
        ("actor_rollout_ref.rollout.multi_turn.format=grounding_minio3", "format=grounding_minio3: the data rows speak protocol 'released'"),
        ("actor_rollout_ref.rollout.n=1", "actor_rollout_ref.rollout.n=1: GRPO compares the trajectories of a group"),
        ("trainer.experiment_name=2024", "trainer.experiment_name: expected a string, got 2024 (int) (a string? quote it"),
        ("trainer.v1.sampler.max_off_policy_strategy=later", "verl trainer minio3_sync: Invalid max off policy strategy"),
    ],
)  # fmt: skip
def test_an_override_that_would_crash_on_the_cluster_fails_the_dry_run_naming_its_key(
    tiny_dataset: Path, rl_model: Path, tmp_path: Path, override: str, needle: str
) -> None:
    """Each of these passed the dry run before, then failed on GPUs: verl multiplied a string, compared '' with
    0, or our loop refused the parser or every row at rollout; the last one fails in verl's trainer constructor."""
    _one_line_error(_train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run", "--", override), needle)


def test_a_wrong_type_reached_through_an_interpolation_names_the_key_the_user_set(
    tiny_dataset: Path, rl_model: Path, tmp_path: Path
) -> None:
    """rollout.prompt_length is ${data.max_prompt_length} in verl's config: the error names the key given."""
    res = _train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run", "--", "data.max_prompt_length=long")
    _one_line_error(res, "verl config: data.max_prompt_length: expected an integer, got 'long'")


@pytest.fixture(scope="module")
def composed_run(tiny_dataset: Path, rl_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A dry run's composed config (resolved, plain data) and verl's stock defaults, as the dry run checks them."""
    from train.rl.compose import verl_defaults

    out = tmp_path_factory.mktemp("sweep") / "run"
    res = _train_rl(tiny_dataset, rl_model, out, "--dry-run")
    assert res.exit_code == 0, res.output
    return {"tree": yaml.safe_load((out / "config.yaml").read_text()), "defaults": verl_defaults()}


def _wrong_value(hint: object) -> object:
    """A value of no type the key takes: a word where a number, a flag or a list is wanted; a mapping where a
    string (or a string or list) is; None when the key takes both (verl gives it no type)."""
    from train.rl.config_types import fits

    return next((v for v in ("abc", {"wrong": 1}) if not fits(v, hint)), None)


def test_the_schema_sweep_finds_no_wrongly_typed_value_approved(composed_run: dict) -> None:
    """Every key of the run's config that verl's schema types (a dataclass annotation or a typed default), set
    in turn to a value of the wrong type, is refused naming that key."""
    import copy

    from minio3_data.errors import BadInputError
    from train.rl.config import minio3_key_types
    from train.rl.config_types import check_types, expected_types, nodes

    tree, defaults = composed_run["tree"], composed_run["defaults"]
    expected = expected_types(defaults, tree, minio3_key_types())
    check_types(tree, defaults, minio3_key_types())  # the run itself is well typed
    swept, untyped, approved = 0, [], []
    for key, _ in list(nodes(tree)):
        wrong = _wrong_value(expected[key]) if key in expected else None
        if wrong is None:
            untyped.append(key)
            continue
        mutated = copy.deepcopy(tree)
        *parents, leaf = key.split(".")
        node = mutated
        for part in parents:
            node = node[part]
        node[leaf] = wrong
        try:
            check_types(mutated, defaults, minio3_key_types(), first={key})
            approved.append(key)
        except BadInputError as e:
            assert str(e).startswith(f"verl config: {key}: expected "), (key, str(e))
        swept += 1
    assert approved == []
    assert swept > 1000, swept  # verl 0.9.1's ppo_trainer with ours: ~1050 keys
    # all verl leaves untyped: fields annotated Any, and what a free-form mapping of kwargs holds
    free_form = re.compile(
        r"(.*\.profiler\.tool_config|global_profiler\.global_tool_config|.*\.model\.(external_lib|target_modules)"
        r"|reward\.custom_reward_function\.reward_kwargs(\..*)?)$"
    )
    assert [key for key in untyped if not free_form.match(key)] == []


# --- presets and the memory estimate --------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["node-7b", "gpu-3b", "gpu-7b-lora"])
def test_each_preset_passes_the_dry_run_and_prints_its_memory_estimate(
    tiny_dataset: Path, rl_model: Path, tmp_path: Path, preset: str
) -> None:
    from train.rl.presets import PRESETS

    res = _train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run", "--preset", preset)
    assert res.exit_code == 0, res.output
    assert "memory per GPU (GiB, an estimate until measured on GPUs" in res.output
    assert "by phase: training" in res.output and "peak" in res.output
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    p = PRESETS[preset]
    scale = (cfg["trainer"]["n_gpus_per_node"], cfg["actor_rollout_ref"]["rollout"]["n"])
    assert scale == (p.gpus_per_node, p.rollout_n)
    for key, value in p.settings.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, key


def test_options_and_overrides_win_over_a_preset(tiny_dataset: Path, rl_model: Path, tmp_path: Path) -> None:
    res = _train_rl(tiny_dataset, rl_model, tmp_path / "run", "--dry-run", "--preset", "gpu-3b", "--rollout-n", "4",
                    "--", "data.train_batch_size=4")  # fmt: skip
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert (cfg["actor_rollout_ref"]["rollout"]["n"], cfg["data"]["train_batch_size"]) == (4, 4)
    assert cfg["algorithm"]["minio3_group_size"] == 4  # the estimator's G follows n
    assert cfg["trainer"]["n_gpus_per_node"] == 1  # still the preset's
