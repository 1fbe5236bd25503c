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
from dataclasses import dataclass, field
from pathlib import Path

from minio3_data import __version__
from minio3_data.errors import BadInputError
from minio3_data.fsutil import atomic_write_text
from minio3_data.outputs import claim_output
from minio3_data.profiles import DEFAULT_PROFILE, get_profile
from train.rl.config import CONFIG_NAME, primary_config, released_settings
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


@dataclass
class RlOptions:
    dataset: Path
    model: Path
    out: Path
    nnodes: int = 1
    gpus_per_node: int = 8
    max_turns: int = 6
    val_max_turns: int = 12
    rollout_n: int = 16
    judge: str = "rule"
    judge_base_urls: list[str] = field(default_factory=list)
    judge_api_key_env: str | None = None
    loss_agg: str = "paper"  # masked_grpo.DEFAULT_NORMALISATION
    protocol: str = DEFAULT_PROFILE
    overrides: list[str] = field(default_factory=list)


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
    """Numbers and names, before anything is written."""
    from train.masked_grpo import NORMALISATIONS

    for name, value, least in (
        ("--max-turns", o.max_turns, 1), ("--val-max-turns", o.val_max_turns, 1), ("--nnodes", o.nnodes, 1),
        ("--gpus-per-node", o.gpus_per_node, 1),
    ):  # fmt: skip
        if value < least:
            raise BadInputError(f"{name} {value}: must be at least {least}")
    if o.rollout_n < 2:
        raise BadInputError(
            f"--rollout-n {o.rollout_n}: GRPO compares the trajectories of a group; use at least 2"
        )
    if o.loss_agg not in NORMALISATIONS:
        raise BadInputError(f"--loss-agg {o.loss_agg!r}: use {', '.join(NORMALISATIONS)}")
    get_profile(o.protocol)


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
            raise BadInputError(
                f"train-rl needs the rl extra ({e.name or e} is missing): {INSTALL_HINT}"
            ) from None
        finally:
            logging.disable(logging.NOTSET)


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
    from train.rl import plugins
    from train.rl.compose import check_entry_point, compose_config, resolve_plugins, validate
    from train.rl.data import write_rl_data
    from train.rl.trainer import TRAINERS

    extra = plugins.rollout_config(
        o.protocol, o.judge, judge_base_urls=o.judge_base_urls, judge_api_key_env=o.judge_api_key_env
    )
    agent = extra.get("actor_rollout_ref.rollout.agent.default_agent_loop", "tool_agent")
    data = write_rl_data(
        o.dataset, out / DATA_DIR, protocol=o.protocol, max_turns=o.max_turns, val_max_turns=o.val_max_turns,
        agent_name=agent,
    )  # fmt: skip
    settings = released_settings(
        model=str(o.model.resolve()), train_file=data.files["train"], val_file=data.files["val"], out=out,
        nnodes=o.nnodes, gpus_per_node=o.gpus_per_node, rollout_n=o.rollout_n,
        max_turns=max(o.max_turns, o.val_max_turns), normalisation=o.loss_agg,  # type: ignore[arg-type]
    )  # fmt: skip
    _write_yaml(out / f"{CONFIG_NAME}.yaml", primary_config({**settings, **extra}))
    cfg = compose_config(out, o.overrides)
    validate(cfg)
    check_entry_point()
    checked = resolve_plugins(cfg, plugins.REGISTERED)
    notes = [] if cfg.trainer.v1.trainer_mode in TRAINERS else [
        f"trainer.v1.trainer_mode={cfg.trainer.v1.trainer_mode}: verl's trainer without minio3's step metrics "
        f"(over-turn rate, turns, accuracy per source at every step); {', '.join(TRAINERS)} keep them"
    ]  # fmt: skip
    _write_yaml(out / FULL_CONFIG, cfg)
    argv = [
        sys.executable, "-m", "verl.trainer.main_ppo", f"--config-path={out}", f"--config-name={CONFIG_NAME}",
        *o.overrides,
    ]  # fmt: skip
    launch = RlLaunch(out, argv, o.nnodes, data.rows, data.skipped_line(), checked, notes)
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
        if o.nnodes > 1 and not _ray_cluster_running():
            raise BadInputError(
                f"--nnodes {o.nnodes}: no Ray cluster is running here; start one on every node as "
                f"{out / COMMAND} says, then rerun this on the head node"
            )
        return launch, run_streaming(launch.argv, cwd=str(out))


__all__ = ["RlLaunch", "RlOptions", "check_model", "check_options", "prepare", "train_rl"]
