"""What size the model sees an image at: the first view of an original, and each crop.

Three rule sets, named like the protocol profiles that use them:
  - `released`: the released Mini-o3 code, to the pixel. The first view follows
    `verl/utils/dataset/multimodal_dataset.py` `process_image` (l.79-113): scale by sqrt into
    [min_pixels, max_pixels] with `int()` truncation, and a row whose view has a side under 28 px is
    dropped (an assert there; refused here). A crop follows `vllm_async_engine.py` `process_image`
    (l.189-225): the same two scalings, then a side under 28 px scaled to `int(side * 28 / short + 1)`,
    then an aspect of 200 or more stretched to `int(long / 190 + 1)` on the short side.
  - `minio3`: ours: sizes rounded up instead of truncated (a crop never shrinks below its range), short
    side at least 28, and a view that would still exceed `max_pixels` (extreme aspect ratios) refused.
  - `smart`: Qwen2-VL/2.5-VL's smart_resize (sides multiples of 28), reimplemented here because
    qwen-vl-utils imports torch.
"""

from __future__ import annotations

import math

FIRST_VIEW_MAX_PIXELS = 2_000_000
CROP_MIN_PIXELS = 40_000
CROP_MAX_PIXELS = 2_000_000
MIN_SIDE = 28
MAX_ASPECT = 200
RELEASED_ASPECT_SIDE = 190  # the released crop rule stretches a >= 1:200 view's short side to long / 190 + 1
QWEN_FACTOR = 28
RESIZE_MODES: tuple[str, ...] = ("released", "minio3", "smart")

Size = tuple[int, int]  # (width, height)


def scale_into(w: int, h: int, max_pixels: int, min_pixels: int) -> Size:
    """The released loaders' (and LLaMA-Factory's) first two steps: down by sqrt to max_pixels, up by sqrt to
    min_pixels, int(); ValueError where the first leaves a side of 0 px."""
    if w * h > max_pixels:
        s = math.sqrt(max_pixels / (w * h))
        w, h = int(w * s), int(h * s)
    if not w or not h:
        raise ValueError(f"a {w}x{h} view has no pixels: the aspect ratio is too extreme")
    if w * h < min_pixels:
        s = math.sqrt(min_pixels / (w * h))
        w, h = int(w * s), int(h * s)
    return w, h


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


def released_crop_size(
    width: int, height: int, max_pixels: int = CROP_MAX_PIXELS, min_pixels: int = CROP_MIN_PIXELS
) -> Size:
    """The released crop display size: the two scalings, then the 28 px and aspect-ratio steps, in order."""
    w, h = scale_into(width, height, max_pixels, min_pixels)
    if w < MIN_SIDE or h < MIN_SIDE:
        s = MIN_SIDE / min(w, h)
        w, h = int(w * s + 1), int(h * s + 1)
    if w / h >= MAX_ASPECT:
        h = int(w / RELEASED_ASPECT_SIDE + 1)
    if h / w >= MAX_ASPECT:
        w = int(h / RELEASED_ASPECT_SIDE + 1)
    return w, h


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
) -> tuple[int, int]:
    """Qwen2-VL/2.5-VL's smart_resize: sides multiples of `factor`, pixels in [min, max]. Returns (h, w)."""
    if max(height, width) / min(height, width) > MAX_ASPECT:
        raise ValueError(
            f"aspect ratio must be smaller than {MAX_ASPECT}, got {max(height, width) / min(height, width)}"
        )
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def display_size(
    width: int, height: int, max_pixels: int, min_pixels: int = 0, mode: str = "released", *, first: bool = False
) -> Size:
    """(width, height) the model sees of a `first` view or a crop, under rule set `mode` (RESIZE_MODES).
    ValueError for an image the rule refuses."""
    if mode == "released":
        rule = released_first_view_size if first else released_crop_size
        return rule(width, height, max_pixels, min_pixels)
    if mode == "minio3":
        return fit_pixels(width, height, max_pixels, min_pixels)
    if mode == "smart":
        h, w = smart_resize(height, width, min_pixels=min_pixels, max_pixels=max_pixels)
        return w, h
    raise ValueError(f"unknown resize mode {mode!r}; use one of {', '.join(RESIZE_MODES)}")


def first_view_size(
    width: int,
    height: int,
    max_pixels: int = FIRST_VIEW_MAX_PIXELS,
    min_pixels: int = CROP_MIN_PIXELS,
    mode: str = "released",
) -> Size:
    """Size of the first view of an original: downscaled to max_pixels, tiny images (< min_pixels) upscaled,
    as the released loader does."""
    return display_size(width, height, max_pixels, min_pixels, mode, first=True)
