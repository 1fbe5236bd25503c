"""One trajectory's zoom state in the RL rollout: the same ZoomEnv, profile and texts synthesis and export use.

A session is opened once per trajectory on the full-resolution original; its first view and every crop come
from ZoomEnv, so a crop of an observation is cut from the original with the composed box, and the process's
shared OriginalCache decodes each original once however many trajectories (G samples of a prompt, several
prompts on one image) zoom into it. The turn the model sees after a zoom is the profile's observation text,
with `<image>` where the crop goes; after a refused zoom, the profile's error text. No verl import: the
benchmark and the tool share this code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from PIL import Image

from minio3_data.images import OriginalCache, default_cache
from minio3_data.profiles import ProtocolProfile
from minio3_data.protocol import Malformed, Zoom
from minio3_data.zoom import ZoomEnv, ZoomError


@dataclass
class StepResult:
    """What the tool answers: the crop (None after an error) and the text of the turn that carries it."""

    image: Image.Image | None
    text: str


class ZoomSession:
    """The zoom environment of one trajectory. Not thread-safe: one trajectory drives it, one step at a time."""

    def __init__(
        self, image_path: str | os.PathLike, protocol: ProtocolProfile, *, cache: OriginalCache | None = None
    ) -> None:
        self.profile = protocol
        self.env = ZoomEnv(image_path, cache=cache if cache is not None else default_cache(), protocol=self.profile)
        self.crops = 0
        self.errors = 0

    def first_view(self) -> Image.Image:
        """Observation 0 as the model sees it: the profile's first-view size, from the cached original."""
        return self.env.first_view().image

    def step(self, action_index: int, turn: str) -> StepResult:
        """Answer assistant turn `action_index` (0-based, error turns included: the released numbering counts
        them), read in the profile's words: crop and observation text for a valid zoom, the error text for
        anything refused. The parser sends only turns that need the tool."""
        action = self.profile.parse_turn(turn, num_observations=self.crops)
        if isinstance(action, Malformed):
            return self._error(action.reason)
        if not isinstance(action, Zoom):
            raise ValueError(f"the zoom tool was called for a turn that asks for no zoom: {action!r}")
        result = self.env.step(action)
        if isinstance(result, ZoomError):
            return self._error(result.message)
        self.crops += 1
        return StepResult(result.image, self.profile.observation_text(action_index, result.index, size=result.size))

    def _error(self, message: str) -> StepResult:
        self.errors += 1
        return StepResult(None, self.profile.error_text(message))
