"""The decompression-bomb guard: one message with the limit and how to raise it, and PIL's own guard is
never left switched off by concurrent opens."""

from __future__ import annotations

import threading

import pytest
from PIL import Image

from minio3_data.errors import ImageError
from minio3_data.images import image_size, open_image


def test_bomb_far_above_the_limit_is_refused_by_name(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (3000, 1000)).save(path)
    monkeypatch.setenv("MINIO3_MAX_IMAGE_PIXELS", "1000000")
    for read in (open_image, image_size):  # 3 MP: more than twice the 1 MP limit
        with pytest.raises(ImageError, match=r"big\.png: .*1,000,000.*MINIO3_MAX_IMAGE_PIXELS"):
            read(path)
    monkeypatch.setenv("MINIO3_MAX_IMAGE_PIXELS", "2000000")  # 3 MP: above the limit, under twice it
    with pytest.raises(ImageError, match=r"3,000,000 pixels exceeds the limit of 2,000,000"):
        open_image(path)
    monkeypatch.setenv("MINIO3_MAX_IMAGE_PIXELS", "5000000")
    assert open_image(path).size == (3000, 1000)


def test_concurrent_opens_never_switch_off_pils_own_guard(tmp_path):
    path = tmp_path / "small.jpg"
    Image.new("RGB", (64, 48), (9, 99, 199)).save(path)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                open_image(path)
                image_size(path)
        except BaseException as e:  # pragma: no cover - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and Image.MAX_IMAGE_PIXELS is not None
