"""ZoomEnv: the one crop geometry every stage shares (DESIGN invariant 1).

Observation 0 is the original image, shown downscaled; observation k is the k-th successful crop. A crop
of a crop is cut from the original with the composed integer box, so only originals are ever decoded
(once, into the shared OriginalCache) and a recorded trajectory (bbox + source per turn) re-derives
byte-identical observations anywhere: synthesis, export, RL, the viewer and eval.

Geometry follows the released Mini-o3 tool: relative bbox scaled to the source's pixels, int-truncated,
clamped to [0, W-1] x [0, H-1]; invalid when narrower or shorter than 1 px or elongated past 1:200.
Display sizes follow the released rules (or Qwen's smart_resize): first view LANCZOS, crops NEAREST
as the released rollout resizes them (`smart` uses BICUBIC, as Qwen's image processor does).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .errors import BadInputError
from .images import (
    CROP_MAX_PIXELS,
    CROP_MIN_PIXELS,
    FIRST_VIEW_MAX_PIXELS,
    MAX_ASPECT,
    RESIZE_MODES,
    OriginalCache,
    default_cache,
    display_size,
    encode_jpeg,
    image_size,
)
from .lazy import lazy
from .protocol import Zoom
from .records import Turn

PixelBox = tuple[int, int, int, int]  # xyxy integer pixels of the original image
CROP_RESAMPLE = {"mini-o3": Image.Resampling.NEAREST, "smart": Image.Resampling.BICUBIC}
RELATIVE_DECIMALS = 3


@dataclass(frozen=True)
class Observation:
    """One image the model sees: index 0 is the first view, k the k-th crop; `box` is in original pixels.

    Pixels are rendered on demand: a trajectory that only needs the encoded bytes (synthesis holds
    hundreds at once) never keeps a decoded display image alive; `image` renders and keeps it.
    """

    index: int
    box: PixelBox
    size: tuple[int, int]  # display (width, height), known without rendering
    render: Callable[[], Image.Image] = field(compare=False, repr=False)

    @lazy
    def image(self) -> Image.Image:
        return self.render()

    def jpeg(self) -> bytes:
        """Deterministic JPEG bytes, encoded once and reused by every request that re-sends the image."""
        return self._jpeg

    @lazy
    def _jpeg(self) -> bytes:
        return encode_jpeg(self.__dict__.get("image") or self.render())


@dataclass(frozen=True)
class ZoomError:
    message: str  # what the model is told, via protocol.error_text


def crop_box(source_box: PixelBox, bbox: tuple[float, float, float, float]) -> PixelBox | str:
    """The released crop rule: the relative `bbox` of the source crop `source_box` -> a box on the original.

    Returns the composed integer box, or the message that tells the model why the box is invalid.
    """
    if not all(math.isfinite(v) for v in bbox):
        return "bbox_2d holds a non-finite number; use four numbers between 0 and 1"
    sx0, sy0, sx1, sy1 = source_box
    w, h = sx1 - sx0, sy1 - sy0
    x0, x1 = (min(max(int(v * w), 0), w - 1) for v in (bbox[0], bbox[2]))
    y0, y1 = (min(max(int(v * h), 0), h - 1) for v in (bbox[1], bbox[3]))
    cw, ch = x1 - x0, y1 - y0
    if cw < 1 or ch < 1:
        return (
            f"the box {list(bbox)} is {max(cw, 0)}x{max(ch, 0)} pixels on the {w}x{h} source; x1 must be greater "
            "than x0 and y1 greater than y0, with (x0, y0) the top-left corner"
        )
    if max(cw / ch, ch / cw) >= MAX_ASPECT:
        return (
            f"the box {list(bbox)} is {cw}x{ch} pixels, an aspect ratio of {max(cw / ch, ch / cw):.0f}; "
            f"it must stay below {MAX_ASPECT}, so make the region less elongated"
        )
    return sx0 + x0, sy0 + y0, sx0 + x1, sy0 + y1


def to_relative(target_box_px: Iterable[float], source_box: PixelBox) -> tuple[float, float, float, float]:
    """The relative bbox (in the source's frame, 3 decimals, clipped to [0, 1]) whose crop covers the target.

    The inverse of crop_box for a policy that knows where the target is: x0/y0 round down and x1/y1
    round up, each a hair beyond the exact value so int truncation never cuts off an edge pixel.
    """
    tx0, ty0, tx1, ty1 = target_box_px
    sx0, sy0, sx1, sy1 = source_box
    w, h = sx1 - sx0, sy1 - sy0
    scale = 10**RELATIVE_DECIMALS
    eps = 1e-6

    def down(v: float, origin: int, size: int) -> float:
        return min(1.0, max(0.0, math.floor(((math.floor(v) - origin) / size - eps) * scale) / scale))

    def up(v: float, origin: int, size: int) -> float:
        return min(1.0, max(0.0, math.ceil(((math.ceil(v) - origin) / size + eps) * scale) / scale))

    return down(tx0, sx0, w), down(ty0, sy0, h), up(tx1, sx0, w), up(ty1, sy0, h)


class ZoomEnv:
    """One trajectory's view of one original: the first view, then one observation per valid zoom.

    Cheap to construct (reads only the header); the first view is made on first use. Pixels come from
    the shared OriginalCache, so hundreds of environments on the same image decode it once. Not
    thread-safe itself: one trajectory drives one environment (possibly from a worker thread).
    """

    def __init__(
        self,
        image_path: str | os.PathLike,
        *,
        cache: OriginalCache | None = None,
        resize: str = "mini-o3",
        first_max_pixels: int = FIRST_VIEW_MAX_PIXELS,
        crop_min_pixels: int = CROP_MIN_PIXELS,
        crop_max_pixels: int = CROP_MAX_PIXELS,
        size: tuple[int, int] | None = None,
    ) -> None:
        """`size`: the original's size as `image_size` read it, when the caller already knows it (many
        environments on one image then read its header once)."""
        if resize not in RESIZE_MODES:
            raise BadInputError(f"resize={resize!r}: use one of {', '.join(RESIZE_MODES)}")
        self.path = Path(image_path)
        self.cache = cache if cache is not None else default_cache()
        self.resize = resize
        self.first_max_pixels = first_max_pixels
        self.crop_min_pixels = crop_min_pixels
        self.crop_max_pixels = crop_max_pixels
        self.width, self.height = size or image_size(self.path)
        self._first: Observation | None = None
        self._crops: list[Observation] = []

    @property
    def observations(self) -> list[Observation]:
        """Every observation so far (a copy); [0] is the first view."""
        return [self.first_view(), *self._crops]

    def first_view(self) -> Observation:
        """Observation 0, made on first use: zooms never need it, only what the model is shown does."""
        if self._first is None:
            size = self._display_size(self.width, self.height, self.first_max_pixels)
            self._first = Observation(
                0, (0, 0, self.width, self.height), size,
                functools.partial(
                    self.cache.first_view, self.path, self.first_max_pixels, size=size, full=(self.width, self.height)
                ),
            )
        return self._first

    def step(self, zoom: Zoom) -> Observation | ZoomError:
        """Execute one zoom: a new observation (appended), or the error the model is shown."""
        try:
            index = zoom.source_index
        except ValueError as e:
            return ZoomError(str(e))
        if index > len(self._crops):
            return ZoomError(f"{zoom.source} does not exist yet; there are {len(self._crops)} observation(s)")
        source = self._crops[index - 1].box if index else (0, 0, self.width, self.height)
        box = crop_box(source, zoom.bbox)
        if isinstance(box, str):
            return ZoomError(box)
        size = self._display_size(box[2] - box[0], box[3] - box[1], self.crop_max_pixels)
        obs = Observation(len(self._crops) + 1, box, size, functools.partial(self._render, box, size))
        self._crops.append(obs)
        return obs

    def display(self, box: PixelBox) -> Image.Image:
        """What the model sees of `box` (original pixels): the crop resized into the crop pixel range.

        Resampled straight from the original over `box` instead of copying the crop first (3-5x
        faster); the sample positions differ from crop-then-resize by under a pixel.
        """
        return self._render(box, self._display_size(box[2] - box[0], box[3] - box[1], self.crop_max_pixels))

    def _render(self, box: PixelBox, size: tuple[int, int]) -> Image.Image:
        original = self.cache.get(self.path)
        if size == (box[2] - box[0], box[3] - box[1]):
            return original.crop(box)
        return original.resize(size, CROP_RESAMPLE[self.resize], box=box)

    def replay(self, turns: Iterable[Turn]) -> list[Observation]:
        """Re-derive the observations a recorded trajectory saw, checking each against its record."""
        for i, turn in enumerate(turns):
            if turn.observation is None:
                continue
            recorded = turn.bbox is not None and len(turn.bbox) == 4 and turn.source is not None
            result = (
                self.step(Zoom(tuple(turn.bbox), turn.source)) if recorded else ZoomError("no bbox or source")
            )
            got = (
                result.message
                if isinstance(result, ZoomError)
                else f"observation {result.index} {list(result.box)}"
            )
            if (
                isinstance(result, ZoomError)
                or result.index != turn.observation
                or (turn.box_px is not None and list(result.box) != list(turn.box_px))
            ):
                raise BadInputError(
                    f"{self.path}: turn {i} recorded observation {turn.observation} {turn.box_px} from "
                    f"{turn.source} {turn.bbox}, but replaying it gives {got}"
                )
        return self.observations

    def _display_size(self, width: int, height: int, max_pixels: int) -> tuple[int, int]:
        try:
            return display_size(width, height, max_pixels, self.crop_min_pixels, self.resize)
        except ValueError as e:
            raise BadInputError(f"{self.path}: {e}") from None
