"""What the model sees of an image: the size of a first view and of each crop, and how a crop is resampled.

A `DisplayRule` is one such convention; each protocol profile names its own, and a peer profile brings its
own rule built from the functions here. Three are defined:
  - `RELEASED_DISPLAY`: the released Mini-o3 code, to the pixel. The first view follows
    `verl/utils/dataset/multimodal_dataset.py` `process_image` (l.79-113): scale by sqrt into
    [min_pixels, max_pixels] with `int()` truncation, and a row whose view has a side under 28 px is
    dropped (an assert there; refused here). A crop follows `vllm_async_engine.py` `process_image`
    (l.189-225), NEAREST: the same two scalings, then a side under 28 px scaled to `int(side * 28 / short + 1)`,
    then an aspect of 200 or more stretched to `int(long / 190 + 1)` on the short side; each step that fires
    resizes the previous step's image (`released_crop_steps`), so a crop can be resized twice.
  - `MINIO3_DISPLAY`: ours: sizes rounded up instead of truncated (a crop never shrinks below its range),
    short side at least 28, a view that would still exceed `max_pixels` (extreme aspect ratios) refused, and
    one NEAREST resample straight from the original over the box.
  - `SMART_DISPLAY`: Qwen2-VL/2.5-VL's smart_resize (sides multiples of 28), BICUBIC as Qwen's image
    processor resamples, reimplemented here because qwen-vl-utils imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from PIL import Image

FIRST_VIEW_MAX_PIXELS = 2_000_000
CROP_MIN_PIXELS = 40_000
CROP_MAX_PIXELS = 2_000_000
MIN_SIDE = 28
MAX_ASPECT = 200
RELEASED_ASPECT_SIDE = 190  # the released crop rule stretches a >= 1:200 view's short side to long / 190 + 1
QWEN_FACTOR = 28

Size = tuple[int, int]  # (width, height)
PixelBox = tuple[int, int, int, int]  # xyxy integer pixels
SizeRule = Callable[[int, int, int, int], Size]  # (width, height, max_pixels, min_pixels) -> shown size
StepRule = Callable[[int, int, int, int], list[Size]]  # the same -> the sizes resized through, in order


def _scale_steps(w: int, h: int, max_pixels: int, min_pixels: int) -> list[Size]:
    """The released loaders' (and LLaMA-Factory's) first two steps, each one that fires: down by sqrt to
    max_pixels, up by sqrt to min_pixels, int(); ValueError where the first leaves a side of 0 px."""
    steps: list[Size] = []
    if w * h > max_pixels:
        s = math.sqrt(max_pixels / (w * h))
        w, h = int(w * s), int(h * s)
        steps.append((w, h))
    if not w or not h:
        raise ValueError(f"a {w}x{h} view has no pixels: the aspect ratio is too extreme")
    if w * h < min_pixels:
        s = math.sqrt(min_pixels / (w * h))
        w, h = int(w * s), int(h * s)
        steps.append((w, h))
    return steps


def scale_into(w: int, h: int, max_pixels: int, min_pixels: int) -> Size:
    """The size after the two sqrt scalings (see _scale_steps)."""
    return (_scale_steps(w, h, max_pixels, min_pixels) or [(w, h)])[-1]


def released_first_view_size(
    width: int, height: int, max_pixels: int = FIRST_VIEW_MAX_PIXELS, min_pixels: int = CROP_MIN_PIXELS
) -> Size:
    """The released first view; ValueError where the released loader drops the row (a side under 28 px)."""
    w, h = scale_into(width, height, max_pixels, min_pixels)
    if w < MIN_SIDE or h < MIN_SIDE:
        raise ValueError(
            f"a {width}x{height} image is shown at {w}x{h}, a side under {MIN_SIDE} px: the released loader "
            "drops such images (its aspect ratio is too extreme)"
        )
    return w, h


def released_crop_steps(
    width: int, height: int, max_pixels: int = CROP_MAX_PIXELS, min_pixels: int = CROP_MIN_PIXELS
) -> list[Size]:
    """The sizes the released `process_image` resizes a crop through: the two scalings, then the 28 px and
    aspect-ratio steps, each that fires resizing the previous result."""
    steps = _scale_steps(width, height, max_pixels, min_pixels)
    w, h = (steps or [(width, height)])[-1]
    if w < MIN_SIDE or h < MIN_SIDE:
        s = MIN_SIDE / min(w, h)
        w, h = int(w * s + 1), int(h * s + 1)
        steps.append((w, h))
    if w / h >= MAX_ASPECT:
        h = int(w / RELEASED_ASPECT_SIDE + 1)
        steps.append((w, h))
    if h / w >= MAX_ASPECT:
        w = int(h / RELEASED_ASPECT_SIDE + 1)
        steps.append((w, h))
    return steps


def released_crop_size(
    width: int, height: int, max_pixels: int = CROP_MAX_PIXELS, min_pixels: int = CROP_MIN_PIXELS
) -> Size:
    """The released crop display size: the last of its steps."""
    return (released_crop_steps(width, height, max_pixels, min_pixels) or [(width, height)])[-1]


def fit_pixels(width: int, height: int, max_pixels: int, min_pixels: int = 0) -> Size:
    """The `minio3` rule: scale by sqrt into [min_pixels, max_pixels] (rounding up when enlarging), short
    side at least 28; ValueError when that still exceeds max_pixels (never send more than the cap)."""
    w, h = width, height
    if w * h > max_pixels:
        s = math.sqrt(max_pixels / (w * h))
        w, h = max(1, int(w * s)), max(1, int(h * s))
    elif min_pixels and w * h < min_pixels:
        s = math.sqrt(min_pixels / (w * h))
        w, h = math.ceil(w * s), math.ceil(h * s)
    if min(w, h) < MIN_SIDE:
        s = MIN_SIDE / min(w, h)
        w, h = max(MIN_SIDE, math.ceil(w * s)), max(MIN_SIDE, math.ceil(h * s))
    if w * h > max_pixels:
        raise ValueError(
            f"a {width}x{height} image needs {w}x{h} px for a short side of {MIN_SIDE}, over the "
            f"{max_pixels:,}-pixel cap: its aspect ratio is too extreme"
        )
    return w, h


def smart_resize(
    height: int,
    width: int,
    factor: int = QWEN_FACTOR,
    min_pixels: int = 4 * QWEN_FACTOR * QWEN_FACTOR,
    max_pixels: int = 16384 * QWEN_FACTOR * QWEN_FACTOR,
    lift_zero_side: bool = True,
) -> tuple[int, int]:
    """Qwen2-VL/2.5-VL's smart_resize: sides multiples of `factor`, pixels in [min, max]. Returns (h, w).
    qwen-vl-utils lifts a side that rounds to 0 to one `factor`; transformers' image processor does not
    (`lift_zero_side=False`: its min_pixels step then enlarges the image)."""
    if max(height, width) / min(height, width) > MAX_ASPECT:
        raise ValueError(
            f"aspect ratio must be smaller than {MAX_ASPECT}, got {max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if lift_zero_side:
        h_bar, w_bar = max(factor, h_bar), max(factor, w_bar)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _one_step(size: Size, shown: Size) -> list[Size]:
    """A single resize to `shown`, or none when it keeps `size`."""
    return [] if shown == size else [shown]


def fit_steps(width: int, height: int, max_pixels: int, min_pixels: int) -> list[Size]:
    return _one_step((width, height), fit_pixels(width, height, max_pixels, min_pixels))


@dataclass(frozen=True)
class SmartSize:
    """smart_resize with sides multiples of `factor` (28: Qwen2/2.5-VL, 32: Qwen3-VL) as a size rule; an object,
    not a closure, so profiles holding it pickle into worker processes."""

    factor: int = QWEN_FACTOR

    def __call__(self, width: int, height: int, max_pixels: int, min_pixels: int) -> Size:
        h, w = smart_resize(height, width, self.factor, min_pixels, max_pixels)
        return w, h


@dataclass(frozen=True)
class SmartSteps:
    """SmartSize as a one-step crop rule."""

    factor: int = QWEN_FACTOR

    def __call__(self, width: int, height: int, max_pixels: int, min_pixels: int) -> list[Size]:
        return _one_step((width, height), SmartSize(self.factor)(width, height, max_pixels, min_pixels))


def unchanged_size(width: int, height: int, max_pixels: int, min_pixels: int) -> Size:
    """A first view shown as the original itself (the server's processor resizes it)."""
    return width, height


smart_size, smart_steps = SmartSize(), SmartSteps()


@dataclass(frozen=True)
class DisplayRule:
    """How images are shown to a model: the first view's size, the sizes a crop is resized through, the
    crop's filter, and the pixel bounds. `exact` asks for a release's own pixel path (the first view from
    the full decode; a crop cut, then resized step by step) where a faster path (a JPEG draft decode, one
    resample over the box) would differ by a pixel here and there."""

    name: str  # names the rule where cached images are keyed by it
    first_view: SizeRule  # ValueError for an image the rule refuses
    crop_steps: StepRule  # ValueError for a crop the rule refuses
    crop_filter: Image.Resampling
    exact: bool
    first_max_pixels: int = FIRST_VIEW_MAX_PIXELS
    crop_min_pixels: int = CROP_MIN_PIXELS
    crop_max_pixels: int = CROP_MAX_PIXELS

    def first_view_size(self, width: int, height: int) -> Size:
        return self.first_view(width, height, self.first_max_pixels, self.crop_min_pixels)

    def crop_size(self, width: int, height: int) -> Size:
        steps = self.crop_steps(width, height, self.crop_max_pixels, self.crop_min_pixels)
        return steps[-1] if steps else (width, height)

    def show_crop(self, original: Image.Image, box: PixelBox) -> Image.Image:
        """The crop of `original` over `box` as the model sees it."""
        steps = self.crop_steps(box[2] - box[0], box[3] - box[1], self.crop_max_pixels, self.crop_min_pixels)
        if not steps:
            return original.crop(box)
        if not self.exact:
            return original.resize(steps[-1], self.crop_filter, box=box)
        shown = original.crop(box)
        for size in steps:
            shown = shown.resize(size, self.crop_filter)
        return shown


RELEASED_DISPLAY = DisplayRule(
    "released", released_first_view_size, released_crop_steps, Image.Resampling.NEAREST, exact=True
)
MINIO3_DISPLAY = DisplayRule("minio3", fit_pixels, fit_steps, Image.Resampling.NEAREST, exact=False)
SMART_DISPLAY = DisplayRule("smart", smart_size, smart_steps, Image.Resampling.BICUBIC, exact=False)

QWEN_MAX_PIXELS = 16384 * QWEN_FACTOR * QWEN_FACTOR  # 12,845,056: qwen-vl-utils' default max_pixels
QWEN_MIN_PIXELS = 4 * QWEN_FACTOR * QWEN_FACTOR  # 3,136


def doubled_smart_steps(width: int, height: int, max_pixels: int, min_pixels: int) -> list[Size]:
    """Chain-of-Focus' crop: twice its size, then smart_resize, in one resample."""
    return _one_step((width, height), smart_size(2 * width, 2 * height, max_pixels, min_pixels))


# DeepEyes: qwen-vl-utils' fetch_image defaults for the first view and every crop (BICUBIC); a crop is cut
# first (a box beyond the image is black there), then resized
DEEPEYES_DISPLAY = DisplayRule(
    "deepeyes", smart_size, smart_steps, Image.Resampling.BICUBIC, exact=True,
    first_max_pixels=QWEN_MAX_PIXELS, crop_min_pixels=QWEN_MIN_PIXELS, crop_max_pixels=QWEN_MAX_PIXELS,
)  # fmt: skip
# Chain-of-Focus' eval: smart_resize(28, 112^2, 3840^2) LANCZOS for the first view and for each doubled crop
COF_DISPLAY = DisplayRule(
    "chain-of-focus", smart_size, doubled_smart_steps, Image.Resampling.LANCZOS, exact=True,
    first_max_pixels=3840 * 3840, crop_min_pixels=112 * 112, crop_max_pixels=3840 * 3840,
)  # fmt: skip


def first_view_size(
    width: int, height: int, max_pixels: int = FIRST_VIEW_MAX_PIXELS, min_pixels: int = CROP_MIN_PIXELS
) -> Size:
    """The released loader's first view of an original (what a dataset row must allow): downscaled to
    max_pixels, tiny images (< min_pixels) upscaled."""
    return released_first_view_size(width, height, max_pixels, min_pixels)
