"""Safe image decode and the display-size rules every stage shares.

One place decides how big an image may be (decompression-bomb guard), how EXIF orientation is applied,
and what size the model sees (the released Mini-o3 rules, or Qwen's smart_resize reimplemented here
because qwen-vl-utils imports torch).
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path

from PIL import Image, ImageOps

from .errors import ImageError

FIRST_VIEW_MAX_PIXELS = 2_000_000
CROP_MIN_PIXELS = 40_000
CROP_MAX_PIXELS = 2_000_000
MIN_SIDE = 28
MAX_ASPECT = 200
QWEN_FACTOR = 28

DEFAULT_MAX_IMAGE_PIXELS = 250_000_000
MAX_PIXELS_ENV = "MINIO3_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int:
    """The decompression-bomb limit: MINIO3_MAX_IMAGE_PIXELS or 250 MP (an 8K image is 33 MP)."""
    raw = os.environ.get(MAX_PIXELS_ENV)
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        return int(raw)
    except ValueError:
        raise ImageError(f"{MAX_PIXELS_ENV}={raw!r}: must be an integer number of pixels") from None


def check_pixels(path: str | os.PathLike, width: int, height: int) -> None:
    limit = max_image_pixels()
    if width * height > limit:
        raise ImageError(
            f"{path}: {width}x{height} = {width * height:,} pixels exceeds the limit of {limit:,} "
            f"(decompression-bomb guard); raise it with {MAX_PIXELS_ENV}=N if the image is trusted"
        )


def open_image(path: str | os.PathLike, *, draft_pixels: int | None = None) -> Image.Image:
    """Decode an image as RGB with EXIF orientation applied, refusing bombs and corrupt files.

    `draft_pixels` lets JPEG decode at a reduced scale (DCT scaling) when only a view of at most that
    many pixels is needed; the result is then at least that large (never smaller than needed).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: image not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            prev = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # our own guard below gives the better message
            try:
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = prev
            check_pixels(path, *im.size)
            orientation = im.getexif().get(0x0112, 1)
            if draft_pixels and im.format == "JPEG":
                w, h = im.size
                scale = math.sqrt(draft_pixels / (w * h)) if w * h > draft_pixels else 1.0
                if scale < 1.0:
                    im.draft("RGB", (max(1, math.ceil(w * scale)), max(1, math.ceil(h * scale))))
            im.load()
    except ImageError:
        raise
    except Exception as e:  # PIL raises many types on truncated/corrupt data
        raise ImageError(f"{path}: cannot decode image ({e.__class__.__name__}: {e})") from None
    if orientation != 1:
        im = ImageOps.exif_transpose(im)
    return im.convert("RGB") if im.mode != "RGB" else im


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """Width and height after EXIF orientation, reading only the header."""
    path = Path(path)
    try:
        prev = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            with Image.open(path) as im:
                w, h = im.size
                if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    w, h = h, w
        finally:
            Image.MAX_IMAGE_PIXELS = prev
    except FileNotFoundError:
        raise ImageError(f"{path}: image not found") from None
    except Exception as e:
        raise ImageError(f"{path}: cannot read image header ({e.__class__.__name__})") from None
    check_pixels(path, w, h)
    return w, h


def fit_pixels(width: int, height: int, max_pixels: int, min_pixels: int = 0) -> tuple[int, int]:
    """The released Mini-o3 display rule: scale by sqrt into [min_pixels, max_pixels], sides >= 28.

    Returns the display size; (width, height) when no change is needed.
    """
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
        raise ValueError(f"aspect ratio must be smaller than {MAX_ASPECT}, got {max(height, width) / min(height, width)}")
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


def first_view_size(width: int, height: int, max_pixels: int = FIRST_VIEW_MAX_PIXELS) -> tuple[int, int]:
    """Size of the downscaled first view the model sees of an original (no upscaling)."""
    if width * height <= max_pixels:
        return width, height
    return fit_pixels(width, height, max_pixels)


def image_tokens(width: int, height: int) -> int:
    """Qwen-style estimate: one token per 28x28 = 784 displayed pixels (at least one)."""
    return max(1, math.ceil(width * height / 784))


def encode_jpeg(im: Image.Image, quality: int = 90) -> bytes:
    """Deterministic JPEG bytes (no EXIF, fixed quality and subsampling)."""
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, subsampling=0, optimize=False)
    return buf.getvalue()


def encode_png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
