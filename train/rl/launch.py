"""`minio3 train-rl`: check the inputs, write the run dir (data, config, command), check the config with verl
itself, then hand off to verl's `main_ppo` (Ray + FSDP + vLLM) and return its exit code.

The run dir holds everything a run is: `data/` (the verl parquet, excluded.jsonl), `minio3_rl.yaml` (the
primary config verl runs: its ppo_trainer with our settings over it), `config.yaml` (the whole composed
config, the user's overrides applied), `command.sh` (the command; rerun it to resume from the last
checkpoint), `checkpoints/`. Multi-node runs use Ray's documented path (`ray start` on every node, then the
same command on the head node, or `ray job submit`); minio3 schedules nothing itself.
"""

from __future__ import annotations

import logging
import os
import shlex
import warnings
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from minio3_data import __version__
from minio3_data.errors import BadInputError
from minio3_data.families.model_dir import family_of_model, processor_view
from minio3_data.fsutil import atomic_write_text
from minio3_data.outputs import claim_output
from minio3_data.profiles import DEFAULT, ProtocolProfile
from train.rl.budgets import TRAIN_MAX_TURNS, VAL_MAX_TURNS
from train.rl.collapse import ON_COLLAPSE
from train.rl.config import CONFIG_NAME, primary_config, released_settings
from train.rl.constraints import FORMAT_KEY, check_constraints, check_group_size
from train.rl.presets import get_preset
from train.stream import run_streaming

# Only minio3_data and this package's light modules are imported here: without the rl extra (torch, verl,
# Hydra), `minio3 train-rl` must still say in one line how to install it.

DATA_DIR = "data"
FULL_CONFIG = "config.yaml"
COMMAND = "command.sh"
INSTALL_HINT = "pip install -e '.[rl]' (on a CPU-only machine: pip install torch==2.13.0 first)"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
RAY_PORT, RAY_DASHBOARD_PORT = 6379, 8265
MODEL_VIEW = "model"  # the model dir seen with its family's processor bounds, where it needs them


@dataclass
class RlOptions:
    dataset: Path
    model: Path
    out: Path
    nnodes: int | None = None  # None: the preset's, else SCALE's
    gpus_per_node: int | None = None
    max_turns: int = TRAIN_MAX_TURNS
    val_max_turns: int = VAL_MAX_TURNS
    rollout_n: int | None = None
    judge: str = "rule"
    judge_base_urls: list[str] = field(default_factory=list)
    judge_api_key_env: str | None = None
    loss_agg: str = "paper"  # masked_grpo.DEFAULT_NORMALISATION
    protocol: ProtocolProfile = DEFAULT
    preset: str | None = None  # presets.PRESETS
    on_collapse: str = "warn"  # collapse.ON_COLLAPSE
    overrides: list[str] = field(default_factory=list)


SCALE = {"nnodes": 1, "gpus_per_node": 8, "rollout_n": 16}  # without a preset: one node of the released run


def with_preset(o: RlOptions) -> RlOptions:
    """The options with each scale the command line left out taken from the preset (or SCALE)."""
    preset = get_preset(o.preset)
    chosen = {
        name: given if (given := getattr(o, name)) is not None else getattr(preset, name, default)
        for name, default in SCALE.items()
    }
    return replace(o, **chosen)


@dataclass
class RlLaunch:
    """A prepared run: its dir, the command, what was written and checked."""

    out: Path
    argv: list[str]
    nnodes: int
    rows: dict[str, int]
    skipped: str | None
    checked: list[str]
    notes: list[str] = field(default_factory=list)  # settings that run but lose something minio3 adds
    memory: list[str] = field(default_factory=list)  # the per-GPU memory estimate, as printed

    def command(self) -> str:
        return shlex.join(self.argv)

    def multinode_steps(self) -> list[str]:
        """Ray's documented multi-node path for this run (empty for one node)."""
        if self.nnodes <= 1:
            return []
        return [
            (
                f"# {self.nnodes} nodes: every node needs this environment (minio3 with the rl extra) and the same "
                "paths to the dataset, the model and the run dir (a shared filesystem)"
            ),
            f"#   on the head node:       ray start --head --port={RAY_PORT} --dashboard-port={RAY_DASHBOARD_PORT}",
            f"#   on each other node:     ray start --address=HEAD_IP:{RAY_PORT}",
            "#   then run this script on the head node (verl joins the running cluster), or submit it:",
            f"#   ray job submit --address=http://HEAD_IP:{RAY_DASHBOARD_PORT} -- {self.command()}",
        ]

    def script(self) -> str:
        header = [
            "#!/usr/bin/env bash",
            f"# minio3 {__version__} train-rl: masked GRPO on verl. Rerun to resume from the last checkpoint.",
            *self.multinode_steps(),
            "set -euo pipefail",
        ]
        return "\n".join([*header, f"exec {self.command()}", ""])


def check_options(o: RlOptions) -> None:
    """Numbers and names (of options with their preset applied: with_preset), before anything is written."""
    try:
        from train.masked_grpo import NORMALISATIONS  # torch: the rl extra
    except ImportError as e:
        raise missing_rl_extra(e) from None

    assert o.nnodes is not None and o.gpus_per_node is not None and o.rollout_n is not None, "with_preset first"
    for name, value, least in (
        ("--max-turns", o.max_turns, 1), ("--val-max-turns", o.val_max_turns, 1), ("--nnodes", o.nnodes, 1),
        ("--gpus-per-node", o.gpus_per_node, 1),
    ):  # fmt: skip
        if value < least:
            raise BadInputError(f"{name} {value}: must be at least {least}")
    check_group_size(o.rollout_n, f"--rollout-n {o.rollout_n}")
    if o.loss_agg not in NORMALISATIONS:
        raise BadInputError(f"--loss-agg {o.loss_agg!r}: use {', '.join(NORMALISATIONS)}")
    if o.on_collapse not in ON_COLLAPSE:
        raise BadInputError(f"--on-collapse {o.on_collapse!r}: use {' or '.join(ON_COLLAPSE)}")


def require_rl_extra() -> None:
    """verl and Hydra come with the rl extra; without them, one line saying how to install it.

    verl warns at import about every optional engine it lacks (torchtitan, veomni, megatron, ...) and about
    the missing accelerator: noise that would stand before our own lines, so it is silenced here (verl's
    run itself, a separate process, still prints it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            import hydra  # noqa: F401
            import verl  # noqa: F401
        except ImportError as e:
            raise missing_rl_extra(e) from None
        finally:
            logging.disable(logging.NOTSET)


def missing_rl_extra(e: ImportError) -> BadInputError:
    return BadInputError(f"train-rl needs the rl extra ({e.name or e} is missing): {INSTALL_HINT}")


def check_model(model: Path) -> None:
    """A local model dir with what verl's rollout and trainer load: config, tokenizer, image processor."""
    if not model.is_dir():
        raise BadInputError(
            f"--model {model}: not a local model directory; nothing is downloaded at run time, so download it "
            "first (e.g. hf download Qwen/Qwen2.5-VL-7B-Instruct --local-dir models/qwen2.5-vl-7b), or, to try "
            "the dry run, build a tiny random one: python tests/tiny_qwen25vl.py models/tiny"
        )
    wanted = {
        "config.json": ("config.json",),
        f"tokenizer ({' / '.join(TOKENIZER_FILES)})": TOKENIZER_FILES,
        f"image processor ({' / '.join(PROCESSOR_FILES)}); train-rl needs a vision-language model": PROCESSOR_FILES,
    }
    for what, names in wanted.items():
        if not any((model / n).is_file() for n in names):
            raise BadInputError(f"--model {model}: no {what}")


def _check_run_dir(out: Path) -> None:
    """A new or empty dir, or an earlier train-rl run (rerunning resumes it); never some other dir's files."""
    if out.is_dir() and any(out.iterdir()) and not (out / f"{CONFIG_NAME}.yaml").is_file():
        raise BadInputError(
            f"--out {out}: not empty and not a train-rl run dir (no {CONFIG_NAME}.yaml); give a new or empty dir"
        )


def _write_yaml(path: Path, data: object) -> None:
    from omegaconf import OmegaConf

    atomic_write_text(path, OmegaConf.to_yaml(OmegaConf.create(data)))


def prepare(o: RlOptions, out: Path) -> RlLaunch:
    """Write the run dir `out` (claimed by the caller) and check its config with verl; run nothing."""
    from omegaconf import OmegaConf

    from train.rl import plugins
    from train.rl.compose import (
        build_trainer, check_entry_point, check_value_types, compose_config, resolve_plugins, validate,
    )  # fmt: skip
    from train.rl.data import write_rl_data
    from train.rl.memory_estimate import DEFAULT_GPU_GIB, estimate_lines
    from train.rl.trainer import TRAINERS

    assert o.nnodes is not None and o.gpus_per_node is not None and o.rollout_n is not None, "with_preset first"
    preset = get_preset(o.preset)

    family = family_of_model(o.model)  # the chat template and the processor's bounds are the family's
    view = processor_view(o.model, family, out / MODEL_VIEW)
    model = view.write() if view else o.model
    extra = plugins.rollout_config(
        o.protocol, o.judge, judge_base_urls=o.judge_base_urls, judge_api_key_env=o.judge_api_key_env, family=family
    )
    agent = extra[plugins.AGENT_LOOP_KEY]
    data = write_rl_data(
        o.dataset, out / DATA_DIR, protocol=o.protocol, max_turns=o.max_turns, val_max_turns=o.val_max_turns,
        agent_name=agent,
    )  # fmt: skip
    settings = released_settings(
        model=str(model.resolve()), train_file=data.files["train"], val_file=data.files["val"], out=out,
        nnodes=o.nnodes, gpus_per_node=o.gpus_per_node, rollout_n=o.rollout_n,
        max_turns=max(o.max_turns, o.val_max_turns), normalisation=o.loss_agg,  # type: ignore[arg-type]
        on_collapse=o.on_collapse,
    )  # fmt: skip
    laid = {**settings, **(preset.settings if preset else {}), **extra}
    _write_yaml(out / f"{CONFIG_NAME}.yaml", primary_config(laid))
    cfg = compose_config(out, o.overrides)
    check_value_types(cfg, o.overrides)  # before verl's own checks, which can trip over a wrong type unnamed
    validate(cfg)
    check_constraints(cfg, o.protocol.name, extra[FORMAT_KEY])
    check_entry_point()
    checked = resolve_plugins(cfg, plugins.REGISTERED)
    build_trainer(cfg)
    gpu_gib = preset.gpu_gib if preset else DEFAULT_GPU_GIB
    memory = estimate_lines(o.model, OmegaConf.to_container(cfg, resolve=True), gpu_gib)
    notes = [view.note()] if view else []
    notes += [] if cfg.trainer.v1.trainer_mode in TRAINERS else [
        f"trainer.v1.trainer_mode={cfg.trainer.v1.trainer_mode}: verl's trainer without minio3's step metrics "
        f"(over-turn rate, turns, accuracy per source at every step); {', '.join(TRAINERS)} keep them"
    ]  # fmt: skip
    _write_yaml(out / FULL_CONFIG, cfg)
    argv = [
        sys.executable, "-m", "verl.trainer.main_ppo", f"--config-path={out}", f"--config-name={CONFIG_NAME}",
        *o.overrides,
    ]  # fmt: skip
    launch = RlLaunch(out, argv, o.nnodes, data.rows, data.exclusion_line(), checked, notes, memory)
    script = out / COMMAND
    atomic_write_text(script, launch.script())
    script.chmod(0o755)
    return launch


def _ray_cluster_running() -> bool:
    """Whether verl's `ray.init()` here would join a running cluster rather than start a one-node one."""
    tmp = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray" / "ray_current_cluster"
    return bool(os.environ.get("RAY_ADDRESS")) or tmp.is_file()


def train_rl(
    o: RlOptions, dry_run: bool = False, on_ready: Callable[[RlLaunch], None] | None = None
) -> tuple[RlLaunch, int | None]:
    """Prepare the run (always) and, unless `dry_run`, run verl and return its exit code. `on_ready(launch)`
    is called between the two (the CLI prints the summary there, before verl's output starts)."""
    o = with_preset(o)
    check_options(o)
    check_model(o.model)
    require_rl_extra()  # after the checks that need no verl: their one-line errors come first and fast
    inputs = [("--dataset", o.dataset), ("--model", o.model)]
    with claim_output(o.out, inputs) as out:
        _check_run_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        launch = prepare(o, out)
        if on_ready is not None:
            on_ready(launch)
        if dry_run:
            return launch, None
        if launch.nnodes > 1 and not _ray_cluster_running():
            raise BadInputError(
                f"--nnodes {o.nnodes}: no Ray cluster is running here; start one on every node as "
                f"{out / COMMAND} says, then rerun this on the head node"
            )
        return launch, run_streaming(launch.argv, cwd=str(out))


__all__ = ["RlLaunch", "RlOptions", "SCALE", "check_model", "check_options", "prepare", "train_rl", "with_preset"]
