"""Protocol profiles, one module each: the language a model speaks with its zoom tool, named and recorded with
the data (run.json, export.json, parquet rows, the verl config).

Every module of this package that defines `PROFILE` (a `ProtocolProfile`) is a profile: adding a protocol is
adding a module (and its tests). A name is resolved here once, with one message for an unknown name, and the
object is passed down; nothing outside this package compares a profile's name. docs/protocol.md compares them.
"""

from __future__ import annotations

from .. import registry
from ..errors import BadInputError
from .base import ProtocolProfile

DEFAULT_PROFILE = "released"

PROFILES: dict[str, ProtocolProfile] = registry.discover(__name__, __path__, "PROFILE", ProtocolProfile, DEFAULT_PROFILE)
DEFAULT = PROFILES[DEFAULT_PROFILE]


def get_profile(name: str, where: str = "--protocol", stage: str | None = None) -> ProtocolProfile:
    """The profile called `name`; another name is a one-line error naming `where` it came from and the choices.
    With `stage`, a profile that stage cannot speak (a peer's convention outside eval) is refused too."""
    profile = registry.lookup(PROFILES, name, where)
    if stage is not None and stage not in profile.stages:
        raise BadInputError(
            f"{where} {name!r}: this convention is for {', '.join(sorted(profile.stages))} only, not {stage} "
            f"(docs/conventions.md says why); {stage} speaks {', '.join(speaking(stage))}"
        )
    return profile


def speaking(stage: str) -> dict[str, ProtocolProfile]:
    """The profiles a stage can speak, by name."""
    return {n: p for n, p in PROFILES.items() if stage in p.stages}


def help_text() -> str:
    """The profiles for an option's help: each name and its summary."""
    return registry.help_text(PROFILES)


__all__ = [
    "DEFAULT", "DEFAULT_PROFILE", "PROFILES", "ProtocolProfile", "get_profile", "help_text", "speaking",
]
