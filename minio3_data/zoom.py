"""ZoomEnv: the one crop geometry every stage shares (DESIGN invariant 1).

Observation 0 is the original image, shown downscaled; observation k is the k-th successful crop. A crop
of a crop is cut from the original with the composed integer box, so only originals are ever decoded
(once, into the shared OriginalCache) and a recorded trajectory (bbox + source per turn) re-derives
byte-identical observations anywhere: synthesis, export, RL, the viewer and eval.

The protocol profile decides which image a zoom names, the box it names there (in both profiles the released
tool's rule: relative bbox scaled to the source's pixels, int-truncated, clamped; refused when narrower or
shorter than 1 px or elongated to 1:200) and the messages of a refusal; its display rule (display.py) decides
the sizes the model sees and how a crop is resampled. First views are LANCZOS.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from .display import DisplayRule, PixelBox
from .errors import BadInputError, ImageError
from .images import OriginalCache, default_cache, encode_jpeg, image_size
from .lazy import lazy
from .profiles import DEFAULT, ProtocolProfile
from .protocol import Zoom
from .records import Turn

RELATIVE_DECIMALS = 3


@dataclass(frozen=True)
class Observation:
    """One image the model sees: index 0 is the first view, k the k-th crop; `box` is in original pixels (in
    first-view pixels for a profile that cuts crops from the first view, `crops_first_view`: the first view's
    box is then its own whole; ZoomEnv.on_original maps such a box to the original).

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


def crop_box(source_box: PixelBox, bbox: tuple, profile: ProtocolProfile = DEFAULT) -> PixelBox | str:
    """The box on the original that the zoom `bbox` names on the source crop `source_box`, or the message (in
    the profile's words) that tells the model why it is refused. A crop of a crop is the crop of the original
    with this composed box."""
    sx0, sy0, sx1, sy1 = source_box
    box = profile.box_on_source(bbox, (sx1 - sx0, sy1 - sy0))
    if isinstance(box, str):
        return box
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
        protocol: ProtocolProfile = DEFAULT,
        display: DisplayRule | None = None,
        size: tuple[int, int] | None = None,
    ) -> None:
        """`protocol`: the profile whose source rules, boxes, messages and display apply; `display` another
        display rule (e.g. display.SMART_DISPLAY). `size`: the original's size as `image_size` read it, when
        the caller already knows it (many environments on one image then read its header once)."""
        self.profile = protocol
        self.display = display or protocol.display
        self.path = Path(image_path)
        self.cache = cache if cache is not None else default_cache()
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
            size = self._size(self.display.first_view_size, self.width, self.height)
            whole = (0, 0, *size) if self.profile.crops_first_view else (0, 0, self.width, self.height)
            self._first = Observation(
                0, whole, size,
                functools.partial(
                    self.cache.first_view, self.path, self.display.first_max_pixels, size=size,
                    full=(self.width, self.height), exact=self.display.exact,
                ),
            )
        return self._first

    def step(self, zoom: Zoom) -> Observation | ZoomError:
        """Execute one zoom: a new observation (appended), or the error the model is shown."""
        index = self.profile.source_index(zoom.source, len(self._crops))
        if isinstance(index, str):
            return ZoomError(index)
        source = self._crops[index - 1].box if index else self._whole()
        box = crop_box(source, zoom.bbox, self.profile)
        if isinstance(box, str):
            return ZoomError(box)
        size = self._size(self.display.crop_size, box[2] - box[0], box[3] - box[1])
        obs = Observation(len(self._crops) + 1, box, size, functools.partial(self.show, box))
        self._crops.append(obs)
        return obs

    def _whole(self) -> PixelBox:
        """The box of the image crops are cut from: the original, or the first view where the profile cuts it."""
        if self.profile.crops_first_view:
            return self.first_view().box
        return 0, 0, self.width, self.height

    def on_original(self, box: PixelBox) -> tuple[float, float, float, float]:
        """Where `box` (an observation's or a turn's `box_px`: pixels of the image crops are cut from) lies
        on the original, in the original's pixels: what a viewer draws. Scaled from the first view where the
        profile cuts crops from it."""
        if not self.profile.crops_first_view:
            return box
        shown_w, shown_h = self.first_view().size
        sx, sy = self.width / shown_w, self.height / shown_h
        return box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy

    def show(self, box: PixelBox) -> Image.Image:
        """What the model sees of `box` (pixels of the image crops are cut from): the crop as the display rule
        shows it."""
        cut_from = self.first_view().image if self.profile.crops_first_view else self.cache.get(self.path)
        return self.display.show_crop(cut_from, box)

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

    def _size(self, rule: Callable[[int, int], tuple[int, int]], width: int, height: int) -> tuple[int, int]:
        try:
            return rule(width, height)
        except ValueError as e:
            raise ImageError(f"{self.path}: {e}") from None
