"""Model families, one module each: how a model's processor turns pixels into tokens and what LLaMA-Factory
and verl call it (base.py says what a family owns).

Every module of this package that defines `FAMILY` (a `ModelFamily`) is a family: adding one is adding a
module. A name is resolved here once and the object is passed down; a model dir's family is read from its
config.json (model_dir.py).
"""

from __future__ import annotations

from .. import registry
from .base import VISION_MARKERS, ModelFamily, SftVariant

DEFAULT_FAMILY = "qwen2.5-vl"  # Mini-o3 was trained from Qwen2.5-VL-7B

FAMILIES: dict[str, ModelFamily] = registry.discover(__name__, __path__, "FAMILY", ModelFamily, DEFAULT_FAMILY)
DEFAULT = FAMILIES[DEFAULT_FAMILY]


def get_family(name: str, where: str = "--model-family") -> ModelFamily:
    """The family called `name`; another name is a one-line error naming `where` it came from and the choices."""
    return registry.lookup(FAMILIES, name, where)


def help_text() -> str:
    """The families for an option's help: each name and its summary."""
    return registry.help_text(FAMILIES)


__all__ = ["DEFAULT", "DEFAULT_FAMILY", "FAMILIES", "VISION_MARKERS", "ModelFamily", "SftVariant",
           "get_family", "help_text"]  # fmt: skip
