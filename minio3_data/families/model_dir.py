"""A local model dir as its family sees it: which family its config.json names, and the dir with the family's
processor bounds.

Training runs the processor with the family's bounds (ModelFamily.min_pixels / max_pixels), so that it only
rounds each side to its grid and the model sees the protocol's own crops. LLaMA-Factory has no option for the
processor's bounds, and verl's vLLM server reads them from the model dir too, so where a model dir's image
processor says otherwise (Qwen3-VL's stock 65,536 px minimum) training runs on a *processor view*: a dir of
links to every file of the model, with the image processor's config rewritten. Checkpoints saved from it carry
the rewritten config on (into RL, and into `vllm serve` for evaluation).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BadInputError
from ..fsutil import atomic_write_text
from .base import ModelFamily

CONFIG = "config.json"
# An image processor's config: alone (preprocessor_config.json), or nested under "image_processor" in the
# processor's (processor_config.json, as transformers 5 saves a whole processor)
IMAGE_PROCESSOR_CONFIG = "preprocessor_config.json"
PROCESSOR_CONFIG = "processor_config.json"
VIEW_MARK = "minio3_processor_view.json"  # what a view was made from; marks a dir as ours to replace


def _read_json(path: Path, where: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BadInputError(f"{where}: cannot read {path.name} ({e})") from None
    if not isinstance(data, dict):
        raise BadInputError(f"{where}: {path.name} is not a JSON object")
    return data


def family_of_model(model: Path, where: str = "--model") -> ModelFamily:
    """The family a model dir's config.json names (its model_type, else its architectures)."""
    from . import FAMILIES  # not at import: the package imports this module while it discovers its families

    config = _read_json(model / CONFIG, f"{where} {model}")
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    for family in FAMILIES.values():
        if model_type in family.model_types or set(map(str, architectures)) & set(family.architectures):
            return family
    known = "; ".join(f"{f.name}: {', '.join(f.model_types)}" for f in FAMILIES.values())
    raise BadInputError(
        f"{where} {model}: config.json has model_type {model_type!r}, which no model family knows ({known})"
    )


def refuse_other_family(model_family: ModelFamily, model: Path, family: ModelFamily, source: str) -> None:
    """One line when a model dir's family is not the one its data was made for."""
    if model_family != family:
        raise BadInputError(
            f"--model {model} is a {model_family.name} model (its config.json), but {source} is for {family.name}; "
            f"re-export with --model-family {model_family.name}, or train a {family.name} model"
        )


def _image_processor_configs(model: Path) -> dict[str, dict[str, Any]]:
    """The image processor configs a model dir holds, by file name (the nested one under "image_processor")."""
    found = {}
    for name in (IMAGE_PROCESSOR_CONFIG, PROCESSOR_CONFIG):
        if (model / name).is_file():
            data = _read_json(model / name, f"--model {model}")
            found[name] = data.get("image_processor", {}) if name == PROCESSOR_CONFIG else data
    return {name: cfg for name, cfg in found.items() if cfg}


def _bounds(cfg: dict[str, Any]) -> tuple[Any, Any]:
    size = cfg.get("size") if isinstance(cfg.get("size"), dict) else {}
    return cfg.get("min_pixels", size.get("shortest_edge")), cfg.get("max_pixels", size.get("longest_edge"))


def _with_bounds(cfg: dict[str, Any], family: ModelFamily) -> dict[str, Any]:
    """`cfg` with the family's bounds wherever transformers may read them (size, and min/max_pixels if present)."""
    out = {**cfg, "size": {"shortest_edge": family.min_pixels, "longest_edge": family.max_pixels}}
    for key, value in (("min_pixels", family.min_pixels), ("max_pixels", family.max_pixels)):
        if key in cfg:
            out[key] = value
    return out


def needs_view(model: Path, family: ModelFamily) -> bool:
    """Whether the model dir's image processor has other bounds than the family's."""
    configs = _image_processor_configs(model)
    return any(_bounds(cfg) != (family.min_pixels, family.max_pixels) for cfg in configs.values())


def processor_view(model: Path, family: ModelFamily, path: Path) -> ProcessorView | None:
    """The view of `model` at `path` that training needs, or None when its image processor has the family's
    bounds already."""
    return ProcessorView(model, family, path) if needs_view(model, family) else None


@dataclass(frozen=True)
class ProcessorView:
    """`model` seen with `family`'s processor bounds: at `path`, links to every file of `model`, the image
    processor's config rewritten."""

    model: Path
    family: ModelFamily
    path: Path

    def note(self) -> str:
        """The line that says a view is used, and why."""
        f = self.family
        return (
            f"training reads {self.model} through {self.path}: its image processor's bounds set to "
            f"{f.min_pixels:,}-{f.max_pixels:,} px ({f.name}'s), so the processor only rounds each side to "
            f"{f.factor} px and the model sees the protocol's own crop sizes"
        )

    def write(self) -> Path:
        """Make the view (or keep the one an earlier run made from the same model) and return its path."""
        source = self.model.resolve()
        mark = {"model": str(source), "min_pixels": self.family.min_pixels, "max_pixels": self.family.max_pixels}
        if self._made(mark):
            return self.path
        if (self.path / VIEW_MARK).is_file():
            shutil.rmtree(self.path)
        elif self.path.exists():
            raise BadInputError(f"{self.path}: exists and is not a processor view made by minio3; move it away")
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        configs = _image_processor_configs(source)
        for entry in source.iterdir():
            if entry.name not in configs:
                (tmp / entry.name).symlink_to(entry)
        for name, cfg in configs.items():
            bounded = _with_bounds(cfg, self.family)
            data = {**_read_json(source / name, str(source)), "image_processor": bounded} if name == PROCESSOR_CONFIG else bounded
            atomic_write_text(tmp / name, json.dumps(data, indent=2) + "\n")
        atomic_write_text(tmp / VIEW_MARK, json.dumps(mark, indent=2) + "\n")
        try:
            tmp.rename(self.path)
        except OSError:  # another process (a node of the same run) made it first
            shutil.rmtree(tmp, ignore_errors=True)
            if not self._made(mark):
                raise
        return self.path

    def _made(self, mark: dict[str, Any]) -> bool:
        return (self.path / VIEW_MARK).is_file() and _read_json(self.path / VIEW_MARK, str(self.path)) == mark
