"""ZoomEnv: the one crop geometry every stage shares (DESIGN invariant 1).

Observation 0 is the original image, shown downscaled; observation k is the k-th successful crop. A crop
of a crop is cut from the original with the composed integer box, so only originals are ever decoded
(once, into the shared OriginalCache) and a recorded trajectory (bbox + source per turn) re-derives
byte-identical observations anywhere: synthesis, export, RL, the viewer and eval.

Geometry follows the released Mini-o3 tool: relative bbox scaled to the source's pixels, int-truncated,
clamped to [0, W-1] x [0, H-1]; invalid when narrower or shorter than 1 px or elongated past 1:200.
The protocol profile decides the display sizes (display.py), the messages a refused zoom gets, and how a
source is resolved; first views are LANCZOS, crops NEAREST as the released rollout resizes them (`smart`
uses BICUBIC, as Qwen's image processor does).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .display import CROP_MAX_PIXELS, CROP_MIN_PIXELS, FIRST_VIEW_MAX_PIXELS, RESIZE_MODES, display_size
from .errors import BadInputError, ImageError
from .images import OriginalCache, default_cache, encode_jpeg, image_size
from .lazy import lazy
from .profiles import ProtocolProfile, get_profile
from .protocol import Zoom
from .records import Turn

PixelBox = tuple[int, int, int, int]  # xyxy integer pixels of the original image
CROP_RESAMPLE = {"released": Image.Resampling.NEAREST, "minio3": Image.Resampling.NEAREST,
                 "smart": Image.Resampling.BICUBIC}
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
    message: str  # what the model is told, via the profile's error_text


def crop_box(
    source_box: PixelBox, bbox: tuple[float, float, float, float], profile: ProtocolProfile | str = "released"
) -> PixelBox | str:
    """The released crop rule: the relative `bbox` of the source crop `source_box` -> a box on the original.

    Returns the composed integer box, or the message (in the profile's words) that tells the model why the
    box is invalid.
    """
    sx0, sy0, sx1, sy1 = source_box
    w, h = sx1 - sx0, sy1 - sy0
    box: list[int] = []
    if all(math.isfinite(v) for v in bbox):
        x0, x1 = (min(max(int(v * w), 0), w - 1) for v in (bbox[0], bbox[2]))
        y0, y1 = (min(max(int(v * h), 0), h - 1) for v in (bbox[1], bbox[3]))
        box = [x0, y0, x1, y1]
    problem = get_profile(profile).box_error(bbox, box, (w, h))
    if problem is not None:
        return problem
    x0, y0, x1, y1 = box
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
        protocol: ProtocolProfile | str = "released",
        resize: str | None = None,
        first_max_pixels: int = FIRST_VIEW_MAX_PIXELS,
        crop_min_pixels: int = CROP_MIN_PIXELS,
        crop_max_pixels: int = CROP_MAX_PIXELS,
        size: tuple[int, int] | None = None,
    ) -> None:
        """`protocol`: the profile whose messages, source rules and display sizes apply; `resize` another
        display rule set (display.RESIZE_MODES, e.g. "smart"). `size`: the original's size as `image_size`
        read it, when the caller already knows it (many environments on one image then read its header once)."""
        self.profile = get_profile(protocol)
        resize = resize or self.profile.resize
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
            size = self._display_size(self.width, self.height, self.first_max_pixels, first=True)
            self._first = Observation(
                0, (0, 0, self.width, self.height), size,
                functools.partial(
                    self.cache.first_view, self.path, self.first_max_pixels, size=size, full=(self.width, self.height),
                    exact=self.resize == "released",
                ),
            )
        return self._first

    def step(self, zoom: Zoom) -> Observation | ZoomError:
        """Execute one zoom: a new observation (appended), or the error the model is shown."""
        index = self.profile.source_index(zoom.source, len(self._crops))
        if isinstance(index, str):
            return ZoomError(index)
        source = self._crops[index - 1].box if index else (0, 0, self.width, self.height)
        box = crop_box(source, zoom.bbox, self.profile)
        if isinstance(box, str):
            return ZoomError(box)
        size = self._display_size(box[2] - box[0], box[3] - box[1], self.crop_max_pixels)
        obs = Observation(len(self._crops) + 1, box, size, functools.partial(self._render, box, size))
        self._crops.append(obs)
        return obs

    def display(self, box: PixelBox) -> Image.Image:
        """What the model sees of `box` (original pixels): the crop resized into the crop pixel range."""
        return self._render(box, self._display_size(box[2] - box[0], box[3] - box[1], self.crop_max_pixels))

    def _render(self, box: PixelBox, size: tuple[int, int]) -> Image.Image:
        """The crop at its display size. `released`: the release's own two steps, crop then resize, for its
        exact pixels (resizing over a box samples through Pillow's fixed-point path and differs by a pixel
        here and there); otherwise resampled straight from the original over `box`, 3-30x faster."""
        original = self.cache.get(self.path)
        if size == (box[2] - box[0], box[3] - box[1]):
            return original.crop(box)
        if self.resize == "released":
            return original.crop(box).resize(size, CROP_RESAMPLE[self.resize])
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

    def _display_size(self, width: int, height: int, max_pixels: int, *, first: bool = False) -> tuple[int, int]:
        try:
            return display_size(width, height, max_pixels, self.crop_min_pixels, self.resize, first=first)
        except ValueError as e:
            raise ImageError(f"{self.path}: {e}") from None
