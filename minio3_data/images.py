"""Safe image decode and the shared cache of decoded originals.

One place decides how big an image may be (decompression-bomb guard), how EXIF orientation is applied,
and how often an original is decoded (once, into OriginalCache); display.py says what size the model
sees it at.
"""

from __future__ import annotations

import io
import math
import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps

from .display import FIRST_VIEW_MAX_PIXELS, first_view_size
from .errors import ImageError

DEFAULT_MAX_IMAGE_PIXELS = 250_000_000
MAX_PIXELS_ENV = "MINIO3_MAX_IMAGE_PIXELS"
DEFAULT_CACHE_BYTES = 1 << 30
CACHE_MB_ENV = "MINIO3_IMAGE_CACHE_MB"


def max_image_pixels() -> int:
    """The decompression-bomb limit: MINIO3_MAX_IMAGE_PIXELS or 250 MP (an 8K image is 33 MP)."""
    raw = os.environ.get(MAX_PIXELS_ENV)
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        return int(raw)
    except ValueError:
        raise ImageError(f"{MAX_PIXELS_ENV}={raw!r}: must be an integer number of pixels") from None


def check_pixels(
    path: str | os.PathLike,
    width: int,
    height: int,
    limit: int | None = None,
    raise_with: str = f"{MAX_PIXELS_ENV}=N",
) -> None:
    """Refuse an image over `limit` pixels (default: the bomb guard's), saying which setting raises it."""
    limit = max_image_pixels() if limit is None else limit
    if width * height > limit:
        raise ImageError(
            f"{path}: {width}x{height} = {width * height:,} pixels exceeds the limit of {limit:,} "
            f"(decompression-bomb guard); raise it with {raise_with} if the image is trusted"
        )


# Our guard (check_pixels) refuses with a message saying how to raise the limit; PIL's own warning for the
# same images would only be noise on top of it.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def open_header(source: str | os.PathLike | IO[bytes], what: str | os.PathLike) -> Image.Image:
    """`Image.open` (reads the header only) behind our decompression-bomb guard.

    PIL's own limit is raised to ours, never lowered or restored: a save/restore of that global races
    between threads and can leave PIL's guard off for the whole process."""
    limit = max_image_pixels()
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < limit:
        Image.MAX_IMAGE_PIXELS = limit
    try:
        im = Image.open(source)
    except Image.DecompressionBombError:
        raise ImageError(
            f"{what}: more than twice the limit of {limit:,} pixels (decompression-bomb guard); "
            f"raise it with {MAX_PIXELS_ENV}=N if the image is trusted"
        ) from None
    try:
        check_pixels(what, *im.size)
    except ImageError:
        im.close()
        raise
    return im


def open_image(path: str | os.PathLike, *, draft_pixels: int | None = None) -> Image.Image:
    """Decode an image as RGB with EXIF orientation applied, refusing bombs and corrupt files.

    `draft_pixels` lets JPEG decode at a reduced scale (DCT scaling) when only a view of at most that
    many pixels is needed; the result is then at least that large (never smaller than needed).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: image not found")
    try:
        im = open_header(path, path)
        orientation = im.getexif().get(0x0112, 1)
        if draft_pixels and im.format == "JPEG" and im.size[0] * im.size[1] > draft_pixels:
            im.draft("RGB", _draft_request(*im.size, draft_pixels))
        im.load()  # reads the pixels and closes the file
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
        with open_header(path, path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: image not found") from None
    except Exception as e:
        raise ImageError(f"{path}: cannot read image header ({e.__class__.__name__})") from None
    return w, h


def encode_jpeg(im: Image.Image, quality: int = 90) -> bytes:
    """Deterministic JPEG bytes (no EXIF, fixed quality and subsampling)."""
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, subsampling=0, optimize=False)
    return buf.getvalue()


def _draft_request(width: int, height: int, draft_pixels: int) -> tuple[int, int]:
    scale = math.sqrt(draft_pixels / (width * height)) if width * height > draft_pixels else 1.0
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _draft_reduces(full: tuple[int, int], size: tuple[int, int]) -> bool:
    """Whether a JPEG draft decode for a `size` view decodes at a reduced DCT scale (PIL reduces only by
    whole factors >= 2); when it does not, the draft decode equals the full decode pixel for pixel."""
    req = _draft_request(*full, size[0] * size[1])
    return full[0] // req[0] >= 2 and full[1] // req[1] >= 2


def _decode_view(path: str | os.PathLike, size: tuple[int, int]) -> Image.Image:
    im = open_image(path, draft_pixels=size[0] * size[1])
    return im if im.size == size else im.resize(size, Image.Resampling.LANCZOS)


def _file_key(path: str | os.PathLike) -> tuple[str, int, int]:
    """Identity of a file's current content: a rewritten file is a new cache entry."""
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        raise ImageError(f"{path}: image not found") from None
    return real, st.st_mtime_ns, st.st_size


class OriginalCache:
    """Decoded originals shared by every ZoomEnv of a process: LRU bounded by bytes (w*h*3), thread-safe.

    Each original is decoded once however many environments, threads or samples use it; a second
    thread asking for an image being decoded waits for that decode instead of repeating it. Images
    handed out are shared: treat them as read-only. An image larger than the whole budget is returned
    but not kept.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[tuple, Image.Image] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def get(self, path: str | os.PathLike) -> Image.Image:
        """The full-resolution RGB original (EXIF applied, bomb guard checked), decoded once."""
        return self._cached((*_file_key(path), "full"), lambda: open_image(path))

    def first_view(
        self,
        path: str | os.PathLike,
        max_pixels: int = FIRST_VIEW_MAX_PIXELS,
        *,
        size: tuple[int, int] | None = None,
        full: tuple[int, int] | None = None,
        exact: bool = False,
    ) -> Image.Image:
        """The first view the model sees: LANCZOS to `size` (default: the released rule for `max_pixels`)
        from a JPEG draft decode, or from the full decode where a draft would not reduce or where `exact`
        asks for the released loader's pixels (LANCZOS from the full decode), so its pixels never depend on
        cache state. `full`, the original's size, spares a header read."""
        key = _file_key(path)
        full = full or image_size(path)
        size = size or first_view_size(*full, max_pixels)
        if size == full:
            return self.get(path)  # nothing to resize: share the original's entry
        if exact or not _draft_reduces(full, size):  # from the full decode: share the original's
            return self._cached((*key, "view", size), lambda: self.get(path).resize(size, Image.Resampling.LANCZOS))
        return self._cached((*key, "view", size), lambda: _decode_view(path, size))

    def _lookup(self, key: tuple) -> Image.Image | None:
        with self._lock:
            im = self._items.get(key)
            if im is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return im

    def _cached(self, key: tuple, decode: Callable[[], Image.Image]) -> Image.Image:
        im = self._lookup(key)
        if im is not None:
            return im
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            im = self._lookup(key)
            if im is not None:
                return im
            try:
                im = decode()
                self._store(key, im)
            finally:
                with self._lock:
                    if self._loading.get(key) is loading:
                        del self._loading[key]
        return im

    def _store(self, key: tuple, im: Image.Image) -> None:
        size = im.width * im.height * len(im.getbands())
        with self._lock:
            self.misses += 1
            if size > self.max_bytes or key in self._items:
                return
            while self._items and self._bytes + size > self.max_bytes:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.width * old.height * len(old.getbands())
            self._items[key] = im
            self._bytes += size


_default_cache: OriginalCache | None = None
_default_lock = threading.Lock()


def default_cache() -> OriginalCache:
    """The process-wide cache; its budget is MINIO3_IMAGE_CACHE_MB megabytes (default 1024)."""
    global _default_cache
    with _default_lock:
        if _default_cache is None:
            raw = os.environ.get(CACHE_MB_ENV)
            try:
                budget = int(raw) << 20 if raw else DEFAULT_CACHE_BYTES
            except ValueError:
                raise ImageError(f"{CACHE_MB_ENV}={raw!r}: must be an integer number of megabytes") from None
            _default_cache = OriginalCache(budget)
        return _default_cache
