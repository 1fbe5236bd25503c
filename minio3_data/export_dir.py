"""The contract of an export dir (export-llamafactory's output, train-sft's input): its file names, and the model
family it was made for. Here, in the library, so that training reads an export without importing the exporter."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import BadInputError
from .families import DEFAULT_FAMILY, ModelFamily, get_family
# LLaMA-Factory's index of the export's data files; named_dirs (which imports nothing of ours) reads it too
from .named_dirs import DATASET_INFO as DATASET_INFO_NAME  # noqa: F401 (re-exported)

SUMMARY_NAME = "export.json"  # what the export wrote and how: counts, exclusions, protocol, model family


def export_family(export_dir: Path) -> ModelFamily:
    """The model family an export was made for (export.json); exports from before families: Qwen2.5-VL."""
    path = export_dir / SUMMARY_NAME
    try:
        name = json.loads(path.read_text(encoding="utf-8")).get("model_family", DEFAULT_FAMILY)
    except (OSError, ValueError, AttributeError) as e:
        raise BadInputError(f"{path}: cannot read it ({e}); run minio3 export-llamafactory first") from None
    return get_family(name, f"{path}: model_family")
