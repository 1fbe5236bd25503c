"""Ablations: controls that change what the policy is shown, to measure what it uses.

`crop-black` shows every observation (each crop a zoom returns; not the first view, which is the question's
image) as a black image of the size the protocol displays it at: the control of the VisualNeedle benchmark.
Only the pixels change; the conversation, the image sizes and their token counts are what the policy would get
otherwise. A policy that answers as well blind has not learned to search with its zooms.

An ablation is part of a run's identity (run.json): an ablated run never resumes as a plain one.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from PIL import Image

from minio3_data.errors import BadInputError
from minio3_data.zoom import Observation

Shown = Callable[[Observation], Observation]  # the crop a zoom made -> what the policy is shown of it


def black(obs: Observation) -> Observation:
    """The observation with the same index, box and display size, all its pixels black."""
    return dataclasses.replace(obs, render=functools.partial(Image.new, "RGB", obs.size))


ABLATIONS: dict[str, Shown] = {"crop-black": black}


def ablation(name: str | None) -> Shown | None:
    """The ablation called `name` (None: none); another name is a one-line error listing the choices."""
    if name is None:
        return None
    try:
        return ABLATIONS[name]
    except (KeyError, TypeError):
        raise BadInputError(f"--ablate {name!r}: use {', '.join(ABLATIONS)}") from None


__all__ = ["ABLATIONS", "Shown", "ablation", "black"]
