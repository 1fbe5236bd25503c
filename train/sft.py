"""Hand an export to LLaMA-Factory: `llamafactory-cli train <export>/sft_<family>.yaml key=value ...`.

LLaMA-Factory lives in its own environment (its pins clash with verl's), so it is run as a program.
The export was made for one model family (export.json); a local model dir of another family is refused, and
one whose image processor has other pixel bounds than the family's is trained through a processor view
(minio3_data/families/model_dir.py) written into LLaMA-Factory's output_dir, since LLaMA-Factory has no
option for them. A hub id is passed on as it is; for a family whose stock processor would enlarge the
protocol's crops (Qwen3-VL) it is refused: download it first.
Overrides go after the YAML path as `key=value` (LLaMA-Factory merges them with OmegaConf.from_cli).
Multi-GPU uses LLaMA-Factory's own torchrun launch: FORCE_TORCHRUN=1 and NPROC_PER_NODE=N (NNODES,
NODE_RANK, MASTER_ADDR and MASTER_PORT pass through from the environment for multi-node runs).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from minio3_data.errors import BadInputError
from minio3_data.export_dir import DATASET_INFO_NAME, export_family
from minio3_data.families import ModelFamily
from minio3_data.families.model_dir import ProcessorView, family_of_model, processor_view, refuse_other_family
from minio3_data.outputs import refuse_overlap
from train.stream import run_streaming

CLI_NAME = "llamafactory-cli"
OVERRIDE_RE = re.compile(r"^-{0,2}([A-Za-z_][A-Za-z0-9_.]*)=(.*)$", re.DOTALL)
# OmegaConf reads `save_strategy=no` as the boolean False (YAML 1.1), which LLaMA-Factory then rejects;
# these words are passed as strings, so booleans must be written true/false.
YAML11_BOOL_WORDS = frozenset({"yes", "no", "on", "off", "y", "n"})
VIEW_DIR = "minio3_base_model"  # the processor view, inside output_dir


@dataclass
class SftLaunch:
    argv: list[str]
    config: Path  # the export's YAML, which argv trains with
    env: dict[str, str] = field(default_factory=dict)  # variables set on top of the current environment
    view: ProcessorView | None = None  # written before LLaMA-Factory starts, which trains through it

    def command(self) -> str:
        """The shell line that does the same launch."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env.items())
        return f"{env} {shlex.join(self.argv)}".strip()

    def dry_run(self) -> str:
        """The command, then the YAML it trains with (the overrides in the command win over it)."""
        note = f"\n# {self.view.note()}" if self.view else ""
        return f"{self.command()}{note}\n\n# {self.config}\n{self.config.read_text(encoding='utf-8')}"


def find_cli(explicit: str | os.PathLike | None) -> str:
    """The llamafactory-cli to run: the given path, or the one on PATH."""
    if explicit is not None:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BadInputError(f"--llamafactory-cli {path}: not an executable file")
        return str(path)
    found = shutil.which(CLI_NAME)
    if not found:
        raise BadInputError(
            f"{CLI_NAME} not found on PATH; install LLaMA-Factory in its own environment "
            "(pip install llamafactory==0.9.5) and pass --llamafactory-cli PATH"
        )
    return found


def overrides(extra: list[str]) -> list[str]:
    """Normalise extra options to LLaMA-Factory's `key=value` form (a leading -- is accepted and dropped)."""
    out = []
    for arg in extra:
        m = OVERRIDE_RE.match(arg)
        if not m:
            raise BadInputError(f"{arg!r}: pass LLaMA-Factory options as key=value, e.g. max_steps=100")
        key, value = m.groups()
        out.append(f"{key}='{value}'" if value.lower() in YAML11_BOOL_WORDS else f"{key}={value}")
    return out


def output_dir(config: Path, extra: list[str]) -> str | None:
    """Where LLaMA-Factory will write (relative to the current dir): the last output_dir= override, else the
    YAML's (None: neither names one)."""
    for arg in reversed(extra):
        m = OVERRIDE_RE.match(arg)
        if m and m[1] == "output_dir":
            return m[2]
    try:
        value = yaml.safe_load(config.read_text(encoding="utf-8")).get("output_dir")
    except (yaml.YAMLError, AttributeError):
        raise BadInputError(f"{config}: not a YAML mapping of LLaMA-Factory options; re-export") from None
    return value if isinstance(value, str) and value else None


def sft_launch(
    export_dir: str | os.PathLike,
    model: str,
    cli: str | os.PathLike | None = None,
    nproc: int | None = None,
    extra: list[str] | None = None,
    check_cli: bool = True,
    variant: str | None = None,
) -> SftLaunch:
    """The command and environment that train `model` on an export, as the export's family's `variant` (None:
    its default); the export's YAML is used unchanged, with the model and the export dir's current location
    given as overrides. `check_cli=False` (a dry run) names the CLI as given or found, without requiring it to
    be installed on this machine."""
    root = Path(export_dir).resolve()
    family = export_family(root)
    config = root / family.yaml_name(family.variant(variant))
    if not config.is_file() or not (root / DATASET_INFO_NAME).is_file():
        raise BadInputError(
            f"{root}: no {config.name} / {DATASET_INFO_NAME}; run minio3 export-llamafactory first"
        )
    writes = output_dir(config, extra or [])
    local = Path(model).is_dir()
    if writes is not None:  # LLaMA-Factory's checkpoints may never land in the export, its images or the model
        refuse_overlap(writes, [("--export", export_dir), *([("--model", model)] if local else [])], option="output_dir")
    if not local:
        _check_hub_model(model, family)
    view = _view(Path(model), family, root, writes) if local else None
    argv = [
        find_cli(cli) if check_cli else str(cli or shutil.which(CLI_NAME) or CLI_NAME), "train", str(config),
        f"model_name_or_path={view.path if view else model}", f"dataset_dir={root}", f"media_dir={root}",
        *overrides(extra or []),
    ]  # fmt: skip
    env: dict[str, str] = {}
    if nproc is not None:
        if nproc < 1:
            raise BadInputError(f"--nproc {nproc}: must be at least 1")
        blank = [a for a in argv[2:] if any(c.isspace() for c in a)]
        if blank:
            raise BadInputError(
                f"{blank[0]!r}: LLaMA-Factory's torchrun launch splits arguments on spaces; "
                "move the export dir or model to a path without spaces"
            )
        env = {"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": str(nproc)}
    return SftLaunch(argv, config, env, view)


def _view(model: Path, family: ModelFamily, export: Path, writes: str | None) -> ProcessorView | None:
    """A local model dir: of the export's family, and seen with the family's processor bounds."""
    refuse_other_family(family_of_model(model), model, family, f"the export {export}")
    if writes is None:
        raise BadInputError(f"{export}: its YAML names no output_dir; pass -- output_dir=DIR")
    return processor_view(model, family, Path(writes).resolve() / VIEW_DIR)


def _check_hub_model(model: str, family: ModelFamily) -> None:
    """A hub id goes to LLaMA-Factory as it is, unless the family's stock processor would enlarge the crops."""
    if family.stock_min_pixels > family.min_pixels:
        raise BadInputError(
            f"--model {model}: not a local dir, and {family.name}'s stock processor enlarges every image under "
            f"{family.stock_min_pixels:,} px; download it first (hf download {model} --local-dir DIR) so that "
            f"train-sft can train it with the family's {family.min_pixels:,}"
        )


def run_sft(launch: SftLaunch) -> int:
    """Write the processor view (if any), then run LLaMA-Factory, stream its output, and return its exit code
    (Ctrl-C is passed on to it)."""
    if launch.view is not None:
        launch.view.write()
    return run_streaming(launch.argv, launch.env)
