"""A search as pictures: the zooms of a trajectory, numbered by turn, drawn on the original and laid over
the observation each one zoomed into; and the observations themselves, written as the model was sent them.

Every box here is a composed box from ZoomEnv, placed on the original by ZoomEnv.on_original (a profile
may cut crops from the first view), so a zoom into an observation lands inside that observation's frame;
nothing here computes a crop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from minio3_data.fsutil import file_hash
from minio3_data.images import encode_jpeg
from minio3_data.protocol import ORIGINAL, source_index
from minio3_data.records import Turn
from minio3_data.zoom import Observation, ZoomEnv

from .draw import OVERVIEW_WIDTH, TARGET_COLOR, THUMB_WIDTH, DrawnBox, box_color, draw_boxes, fit_width
from .markup import Overlay, Picture
from .site import SiteImages, from_page

OVERVIEW_QUALITY = 85
Box = tuple[float, float, float, float]  # xyxy in the original's pixels
BASES_KEPT = 16  # overview bases per process (about 2 MB each): the samples of a question come together
_BASES: OrderedDict[tuple[str, str, tuple[int, int]], Image.Image] = OrderedDict()


@dataclass(frozen=True)
class Step:
    """One executed zoom: the turn that asked for it (1-based), the observation it made, its box on the
    original (the original's pixels) and the observation it was cut from (0: the original)."""

    turn: int
    index: int
    box: Box
    source: int


def steps_of(turns: Sequence[Turn], observations: Sequence[Observation] | None, env: ZoomEnv) -> list[Step]:
    """The executed zooms of recorded turns, with the boxes ZoomEnv re-derived for them; without
    observations (a replay that disagreed with the record), the recorded boxes, to show what was stored."""
    steps = []
    for i, t in enumerate(turns):
        if t.observation is None:
            continue
        if observations is not None and t.observation < len(observations):
            box = observations[t.observation].box
        elif observations is None and t.box_px is not None and len(t.box_px) == 4:
            box = tuple(t.box_px)
        else:
            continue
        try:
            source = source_index(t.source or ORIGINAL)  # stored sources are canonical (source_name)
        except ValueError:
            continue
        steps.append(Step(i + 1, t.observation, env.on_original(box), source))  # type: ignore[arg-type]
    return steps


def overlays(frame: Box, steps: Sequence[Step]) -> list[Overlay]:
    """The zooms of `steps` as fractions of `frame` (a box of the original): where in a picture of that box
    the model looked."""
    fx0, fy0, fx1, fy1 = frame
    w, h = fx1 - fx0, fy1 - fy0
    return [
        Overlay(
            (x0 - fx0) / w, (y0 - fy0) / h, (x1 - fx0) / w, (y1 - fy0) / h, str(s.turn), box_color(s.turn)
        )
        for s in steps
        for x0, y0, x1, y1 in [s.box]
    ]


def into(obs: Observation, steps: Sequence[Step], env: ZoomEnv) -> list[Overlay]:
    """The zooms made into observation `obs` of `env`, over its picture: where the model looked next."""
    return overlays(env.on_original(obs.box), [s for s in steps if s.source == obs.index])


class SearchPictures:
    """Writes one search's pictures into a site: every observation (shared by name), the overview with
    every box, and its thumbnail."""

    def __init__(self, images: SiteImages, env: ZoomEnv, original: Path) -> None:
        self.images = images
        self.env = env
        self.original_id = file_hash(original)  # the same picture under two paths is stored once

    def observation(self, obs: Observation, steps: Sequence[Step], caption: str) -> Picture:
        """The exact JPEG the model was sent, with the zooms made into it laid over it."""
        x0, y0, x1, y1 = obs.box
        w, h = obs.size
        name = f"obs/{self.original_id}-{self.env.display.name}-{x0}_{y0}_{x1}_{y1}-{w}x{h}.jpg"
        src = self.images.put(name, make=obs.jpeg)
        return Picture(from_page(src), caption, into(obs, steps, self.env), alt=f"observation {obs.index}")

    def _overview_base(self) -> Image.Image:
        """The first view at overview width, made once per original and shared by all its samples (the
        scaling costs more than drawing and encoding together)."""
        first = self.env.first_view()
        key = (self.original_id, self.env.display.name, first.size)
        base = _BASES.pop(key, None)
        if base is None:
            base = fit_width(first.image, OVERVIEW_WIDTH)
        _BASES[key] = base  # most recent last
        while len(_BASES) > BASES_KEPT:
            _BASES.popitem(last=False)
        return base

    def overview(
        self, key: str, steps: Sequence[Step], target: Sequence[float] | None, caption: str
    ) -> tuple[Picture, str]:
        """The original with every zoom numbered by turn (and the target), and the site path of its
        thumbnail. The page lays the boxes over one picture per original, which all its samples share (a
        picture per trajectory would double a site's size); the thumbnail has them drawn in."""
        first, size = self.env.first_view(), (self.env.width, self.env.height)
        w, h = first.size
        name = f"overview/{self.original_id}-{self.env.display.name}-{w}x{h}.jpg"
        src = self.images.put(name, make=lambda: encode_jpeg(self._overview_base(), quality=OVERVIEW_QUALITY))
        boxes = overlays((0, 0, *size), steps)
        if target is not None:
            x0, y0, x1, y1 = target
            boxes.insert(
                0, Overlay(x0 / size[0], y0 / size[1], x1 / size[0], y1 / size[1], "", TARGET_COLOR, True)
            )
        drawn = [DrawnBox(s.box, str(s.turn), box_color(s.turn)) for s in steps]
        small = draw_boxes(self._overview_base(), size, drawn, target, max_width=THUMB_WIDTH, labels=False)
        thumb = self.images.put(f"thumb/{key}.jpg", encode_jpeg(small, quality=OVERVIEW_QUALITY))
        return Picture(from_page(src), caption, boxes, "the search on the original", "overview"), thumb
