"""Boxes drawn on an image: the one picture of a search that `exemplars check` and `minio3 view` share.

A person checks a search by seeing every zoom on the original at once: each box in its own colour with its
number above it (so the label hides nothing inside), the target in yellow with a black rim so it shows on
any background. Boxes come in original pixels (ZoomEnv's composed boxes), so a zoom into an observation is
drawn inside its source's frame without any geometry here beyond scaling to the picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]
BOX_COLORS: tuple[RGB, ...] = (
    (230, 25, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (60, 180, 75), (240, 50, 230),
)  # fmt: skip
TARGET_COLOR: RGB = (255, 225, 25)
OVERVIEW_WIDTH = 1100
THUMB_WIDTH = 200  # index thumbnails: boxes drawn at this size stay visible, labels left out
BOX_WIDTH = 3
TARGET_PAD_PX = 5  # the target is drawn this far outside its box, so it hides none of it
TARGET_RIM_PX = 1  # the black rim shown either side of the target's outline
LABEL_SIZE = 18
REDUCING_GAP = 2.0


def fit_width(image: Image.Image, max_width: int) -> Image.Image:
    """`image` scaled down to at most `max_width` wide (itself when it fits). A picture for people, not a
    model: resized in two steps (a box reduce, then LANCZOS), several times faster than LANCZOS alone."""
    if image.width <= max_width:
        return image
    size = (max_width, max(1, round(image.height * max_width / image.width)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


@dataclass(frozen=True)
class DrawnBox:
    """A box in original pixels, the label drawn above it and its colour."""

    box: Sequence[float]
    label: str
    color: RGB


def box_color(number: int) -> RGB:
    """The colour of box `number` (1-based): the same number is the same colour on every page."""
    return BOX_COLORS[(number - 1) % len(BOX_COLORS)]


def hex_color(color: RGB) -> str:
    return "#{:02x}{:02x}{:02x}".format(*color)


def draw_boxes(
    first: Image.Image,
    original_size: tuple[int, int],
    boxes: Sequence[DrawnBox],
    target: Sequence[float] | None = None,
    max_width: int = OVERVIEW_WIDTH,
    labels: bool = True,
) -> Image.Image:
    """`first` (any view of the original, usually the first view) scaled to at most `max_width` wide, with
    the target and every box drawn, later boxes on top; boxes and target are in `original_size` pixels.
    Without `labels` (a thumbnail, where they would cover the picture) only the boxes are drawn."""
    image = fit_width(first, max_width)
    image = image.copy() if image is first else image
    scale = image.width / original_size[0]
    draw = ImageDraw.Draw(image)
    if target is not None:
        tx0, ty0, tx1, ty1 = (v * scale for v in target)
        rim, pad = TARGET_PAD_PX + TARGET_RIM_PX, TARGET_PAD_PX
        draw.rectangle(
            (tx0 - rim, ty0 - rim, tx1 + rim, ty1 + rim),
            outline=(0, 0, 0),
            width=BOX_WIDTH + 2 * TARGET_RIM_PX,
        )  # visible on any colour
        draw.rectangle((tx0 - pad, ty0 - pad, tx1 + pad, ty1 + pad), outline=TARGET_COLOR, width=BOX_WIDTH)
    font = ImageFont.load_default(size=LABEL_SIZE)
    for drawn in boxes:
        x0, y0, x1, y1 = (v * scale for v in drawn.box)
        draw.rectangle((x0, y0, x1, y1), outline=drawn.color, width=BOX_WIDTH)
        if not labels:
            continue
        _, _, tw, th = draw.textbbox((0, 0), drawn.label, font=font)
        at = (x0 + 3, y0 - th - 6 if y0 >= th + 6 else y0 + 3)  # above the box, so it hides nothing inside
        draw.rectangle((at[0] - 3, at[1] - 1, at[0] + tw + 3, at[1] + th + 3), fill=drawn.color)
        draw.text(at, drawn.label, fill=(255, 255, 255), font=font)
    return image
