"""Crop geometry, display sizes, determinism and the shared cache of decoded originals."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from PIL import Image

from minio3_data.errors import BadInputError, ImageError
from minio3_data.images import OriginalCache, open_image
from minio3_data.display import SMART_DISPLAY
from minio3_data.profiles import get_profile
from minio3_data.protocol import Zoom
from minio3_data.records import Turn
from minio3_data.zoom import Observation, ZoomEnv, ZoomError, crop_box, to_relative


MINIO3 = get_profile("minio3")


def scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """A picture with structure at every scale (gradients + noise), so resampling differences show."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x ^ y) & 255], axis=-1)
    noise = rng.integers(0, 40, size=(height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("img") / "scene.jpg"
    scene(3000, 2000).save(path, quality=90)
    return str(path)


# --- pure geometry ---------------------------------------------------------------------------------------


def test_crop_box_scales_truncates_and_composes() -> None:
    assert crop_box((0, 0, 1000, 500), (0.1, 0.2, 0.5, 0.9)) == (100, 100, 500, 450)
    assert crop_box((0, 0, 1000, 500), (0.1239, 0.2, 0.5, 0.9)) == (123, 100, 500, 450)  # int truncation
    # relative to the SOURCE crop, offset by its top-left corner
    assert crop_box((200, 100, 600, 300), (0.5, 0.5, 1.0, 1.0)) == (400, 200, 599, 299)


def test_crop_box_clamps_to_last_pixel() -> None:
    assert crop_box((0, 0, 1000, 500), (0.0, 0.0, 1.0, 1.0)) == (0, 0, 999, 499)
    assert crop_box((0, 0, 1000, 500), (-0.02, -0.01, 1.02, 0.5)) == (0, 0, 999, 250)
    assert crop_box((10, 20, 110, 120), (0.5, 0.5, 1.5, 1.5)) == (60, 70, 109, 119)


def test_crop_box_rejects_empty_and_elongated_boxes() -> None:
    """The minio3 profile's messages (the released ones are pinned in test_released_profile.py)."""
    for bbox in [(0.5, 0.5, 0.5, 0.9), (0.6, 0.1, 0.4, 0.9), (0.1, 0.5, 0.9, 0.5001), (1.0, 0.0, 1.0, 1.0)]:
        message = crop_box((0, 0, 1000, 500), bbox, MINIO3)
        assert isinstance(message, str) and "x1 must be greater than x0" in message
    message = crop_box((0, 0, 10000, 10000), (0.0, 0.0, 1.0, 0.0049), MINIO3)  # 9999 x 49 -> aspect 204
    assert isinstance(message, str) and "aspect ratio" in message
    assert crop_box((0, 0, 10000, 10000), (0.0, 0.0, 0.995, 0.005)) == (0, 0, 9950, 50)  # aspect 199
    assert "non-finite" in crop_box((0, 0, 100, 100), (float("nan"), 0, 1, 1), MINIO3)


def test_crop_of_crop_equals_crop_of_original(big_jpeg: str) -> None:
    """The released tool crops the raw crop; we crop the original with the composed box: same pixels."""
    original = open_image(big_jpeg)
    first = crop_box((0, 0, *original.size), (0.2, 0.1, 0.7, 0.8))
    second = crop_box(first, (0.33, 0.25, 0.9, 0.77))
    assert isinstance(first, tuple) and isinstance(second, tuple)
    raw1 = original.crop(first)
    released = raw1.crop(crop_box((0, 0, *raw1.size), (0.33, 0.25, 0.9, 0.77)))  # type: ignore[arg-type]
    assert np.array_equal(np.asarray(released), np.asarray(original.crop(second)))


boxes = st.tuples(
    st.integers(0, 5000), st.integers(0, 5000), st.integers(20, 6000), st.integers(20, 6000)
).map(lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3]))


@given(source=boxes, data=st.data())
def test_to_relative_covers_the_target(source: tuple[int, int, int, int], data: st.DataObject) -> None:
    sx0, sy0, sx1, sy1 = source
    x0 = data.draw(st.floats(sx0, sx1 - 2))
    y0 = data.draw(st.floats(sy0, sy1 - 2))
    x1 = data.draw(st.floats(x0 + 1, sx1 - 1))
    y1 = data.draw(st.floats(y0 + 1, sy1 - 1))
    assume(max((x1 - x0) / (y1 - y0), (y1 - y0) / (x1 - x0)) < 100)  # a valid zoom target
    rel = to_relative((x0, y0, x1, y1), source)
    assert all(0.0 <= v <= 1.0 and round(v, 3) == v for v in rel)
    box = crop_box(source, rel)
    assert isinstance(box, tuple), box
    assert box[0] <= x0 and box[1] <= y0 and box[2] >= min(x1, sx1 - 1) and box[3] >= min(y1, sy1 - 1)
    # and not much more than the target: at most one 0.001 step (+1 px) per side
    assert x0 - box[0] <= (sx1 - sx0) / 1000 + 2 and box[2] - x1 <= (sx1 - sx0) / 1000 + 2


# --- the environment --------------------------------------------------------------------------------------


def test_first_view_and_numbering(big_jpeg: str) -> None:
    env = ZoomEnv(big_jpeg, cache=OriginalCache())
    assert (env.width, env.height) == (3000, 2000)
    first = env.first_view()
    assert first.index == 0 and first.box == (0, 0, 3000, 2000)
    assert first.image.width * first.image.height <= 2_000_000 and first.image.size == (1732, 1154)
    obs1 = env.step(Zoom((0.25, 0.25, 0.75, 0.75)))
    assert isinstance(obs1, Observation) and obs1.index == 1 and obs1.box == (750, 500, 2250, 1500)
    obs2 = env.step(Zoom((0.0, 0.0, 0.5, 0.5), "observation_1"))
    assert isinstance(obs2, Observation) and obs2.index == 2 and obs2.box == (750, 500, 1500, 1000)
    assert [o.index for o in env.observations] == [0, 1, 2]


def test_errors_do_not_advance_numbering(big_jpeg: str) -> None:
    env = ZoomEnv(big_jpeg, cache=OriginalCache(), protocol=MINIO3)
    assert isinstance(env.step(Zoom((0.5, 0.5, 0.5, 0.6))), ZoomError)
    missing = env.step(Zoom((0, 0, 1, 1), "observation_1"))
    assert isinstance(missing, ZoomError) and "does not exist" in missing.message
    assert isinstance(env.step(Zoom((0, 0, 1, 1), "thumbnail")), ZoomError)
    ok = env.step(Zoom((0.1, 0.1, 0.2, 0.2)))
    assert isinstance(ok, Observation) and ok.index == 1


def test_crop_display_sizes(big_jpeg: str) -> None:
    env = ZoomEnv(big_jpeg, cache=OriginalCache())
    tiny = env.step(Zoom((0.5, 0.5, 0.502, 0.503)))  # 6 x 6 px -> upscaled to >= 40,000 px
    assert isinstance(tiny, Observation) and tiny.box == (1500, 1000, 1506, 1006)
    assert tiny.image.width * tiny.image.height >= 40_000 and min(tiny.image.size) >= 28
    thin = env.step(Zoom((0.0, 0.5, 0.5, 0.505)))  # 1500 x 10 px: short side must reach 28
    assert isinstance(thin, Observation) and min(thin.image.size) >= 28
    mid = env.step(Zoom((0.1, 0.1, 0.4, 0.4)))  # 900 x 600: within range, shown as is
    assert isinstance(mid, Observation) and mid.image.size == (900, 600)
    whole = env.step(Zoom((0, 0, 1, 1)))  # 2999 x 1999 -> downscaled to <= 2 MP
    assert isinstance(whole, Observation) and whole.image.width * whole.image.height <= 2_000_000


def test_smart_resize_option(big_jpeg: str) -> None:
    env = ZoomEnv(big_jpeg, cache=OriginalCache(), display=SMART_DISPLAY)
    sizes = [env.first_view().image.size]
    for bbox in [(0.5, 0.5, 0.502, 0.503), (0.1, 0.1, 0.4, 0.4), (0, 0, 1, 1)]:
        obs = env.step(Zoom(bbox))
        assert isinstance(obs, Observation)
        sizes.append(obs.image.size)
    for w, h in sizes:
        assert w % 28 == 0 and h % 28 == 0 and 40_000 <= w * h <= 2_000_000


def test_output_is_byte_identical(big_jpeg: str) -> None:
    zooms = [
        Zoom((0.1, 0.2, 0.6, 0.7)),
        Zoom((0.3, 0.3, 0.6, 0.6), "observation_1"),
        Zoom((0.9, 0.9, 0.95, 0.97)),
    ]

    def run(cache: OriginalCache) -> list[bytes]:
        env = ZoomEnv(big_jpeg, cache=cache)
        for z in zooms:
            env.step(z)
        return [o.jpeg() for o in env.observations]

    cold = run(OriginalCache())
    warm_cache = OriginalCache()
    warm_cache.get(big_jpeg)  # original already decoded: the first view must not change
    assert run(warm_cache) == cold
    assert run(warm_cache) == cold


def test_first_view_uses_draft_and_matches_full_decode(tmp_path) -> None:
    big = tmp_path / "big.jpg"  # 24 MP: the 2 MP first view can be drawn from a half-scale DCT decode
    scene(6000, 4000).save(big, quality=90)
    cache = OriginalCache()
    view = ZoomEnv(big, cache=cache, protocol=MINIO3).first_view().image
    assert (
        len(cache) == 1 and cache.nbytes == view.width * view.height * 3
    )  # the full original was never decoded nor kept
    reference = open_image(big).resize(view.size, Image.Resampling.LANCZOS)
    diff = np.abs(np.asarray(view, dtype=np.int16) - np.asarray(reference, dtype=np.int16))
    assert diff.mean() < 4


def test_exif_orientation(tmp_path) -> None:
    im = Image.new("RGB", (400, 200), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 100, 100))  # red square top-left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    im.save(path, exif=exif, quality=95)
    env = ZoomEnv(path, cache=OriginalCache())
    assert (env.width, env.height) == (200, 400)
    obs = env.step(Zoom((0.5, 0.0, 1.0, 0.25)))  # displayed top-right: where the red square went
    assert isinstance(obs, Observation)
    r, _, b = np.asarray(obs.image).reshape(-1, 3).mean(axis=0)
    assert r > 200 and b < 60


def test_decompression_bomb_guard(big_jpeg: str, monkeypatch) -> None:
    monkeypatch.setenv("MINIO3_MAX_IMAGE_PIXELS", "1000000")
    with pytest.raises(ImageError, match="decompression-bomb"):
        ZoomEnv(big_jpeg, cache=OriginalCache())


def test_missing_image_is_a_one_line_error(tmp_path) -> None:
    with pytest.raises(ImageError, match="not found"):
        ZoomEnv(tmp_path / "nope.jpg")


def test_replay_reproduces_and_checks_records(big_jpeg: str) -> None:
    env = ZoomEnv(big_jpeg, cache=OriginalCache())
    a = env.step(Zoom((0.1, 0.2, 0.6, 0.7)))
    b = env.step(Zoom((0.3, 0.3, 0.6, 0.6), "observation_1"))
    assert isinstance(a, Observation) and isinstance(b, Observation)
    turns = [
        Turn(
            "t0",
            "zoom",
            bbox=[0.1, 0.2, 0.6, 0.7],
            source="original_image",
            box_px=list(a.box),
            observation=1,
        ),
        Turn("t1", "malformed", error="bad json"),
        Turn(
            "t2", "zoom", bbox=[0.3, 0.3, 0.6, 0.6], source="observation_1", box_px=list(b.box), observation=2
        ),
        Turn("t3", "answer", answer="A"),
    ]
    replayed = ZoomEnv(big_jpeg, cache=OriginalCache()).replay(turns)
    assert [o.jpeg() for o in replayed] == [o.jpeg() for o in env.observations]
    turns[2].box_px = [0, 0, 10, 10]
    with pytest.raises(BadInputError, match="turn 2"):
        ZoomEnv(big_jpeg, cache=OriginalCache()).replay(turns)


# --- the cache --------------------------------------------------------------------------------------------


def test_cache_decodes_once_across_envs_and_threads(big_jpeg: str) -> None:
    cache = OriginalCache()
    results: list[Image.Image] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(big_jpeg))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.misses == 1 and all(r is results[0] for r in results)
    for _ in range(3):
        assert isinstance(ZoomEnv(big_jpeg, cache=cache).step(Zoom((0.1, 0.1, 0.3, 0.3))), Observation)
    assert cache.misses == 1  # zooms never need the first view
    for _ in range(3):
        ZoomEnv(big_jpeg, cache=cache).first_view().jpeg()
    assert cache.misses == 2  # + one first view (rendered when first needed), shared by the three environments


def test_cache_is_bounded_by_bytes(tmp_path) -> None:
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        scene(200, 100, seed=i).save(path)
        paths.append(path)
    one = 200 * 100 * 3
    cache = OriginalCache(max_bytes=2 * one)
    for p in paths:
        cache.get(p)
    assert len(cache) == 2 and cache.nbytes == 2 * one
    cache.get(paths[2])
    cache.get(paths[1])
    assert cache.misses == 3  # the two most recent are still there
    cache.get(paths[0])
    assert cache.misses == 4 and cache.nbytes <= 2 * one
    small = OriginalCache(max_bytes=one - 1)  # larger than the whole budget: served, not kept
    assert small.get(paths[0]).size == (200, 100) and len(small) == 0


def test_cache_sees_a_rewritten_file(tmp_path) -> None:
    path = tmp_path / "a.png"
    scene(64, 64, seed=1).save(path)
    cache = OriginalCache()
    before = np.asarray(cache.get(path)).copy()
    scene(64, 64, seed=2).save(path)
    assert not np.array_equal(before, np.asarray(cache.get(path)))


@pytest.mark.parametrize("size", [(2400, 1600), (7680, 4320)])
def test_first_view_pixels_do_not_depend_on_what_is_cached(tmp_path, size) -> None:
    """The first view may reuse a cached full decode only where a draft decode would equal it."""
    path = tmp_path / "scene.jpg"
    scene(*size, seed=3).save(path, quality=90)
    alone = ZoomEnv(path, cache=OriginalCache()).first_view().jpeg()
    warm = OriginalCache()
    warm.get(path)
    env = ZoomEnv(path, cache=warm)
    assert env.first_view().size == Image.open(io.BytesIO(alone)).size
    assert env.first_view().jpeg() == alone
