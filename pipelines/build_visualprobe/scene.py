"""Procedural high-resolution scenes: a cluttered textured background plus small named objects.

Named objects use saturated colors with a dark outline; the clutter (patches, pebbles, twigs) is
desaturated and outline-free, so it can never be mistaken for an object a question talks about.
Drawing is numpy at quarter resolution for the background and ImageDraw for everything else, so an
8K scene takes about a second. The same seed gives the same pixels.
"""

from __future__ import annotations

import colorsys
import functools
import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Saturated, well separated fill colors for shapes (what color questions ask about).
SHAPE_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "orange": (255, 140, 0),
    "yellow": (250, 222, 20),
    "green": (30, 165, 50),
    "cyan": (0, 200, 225),
    "blue": (30, 70, 225),
    "purple": (140, 50, 200),
    "pink": (255, 110, 185),
}
# Sign plates are light (black text stays legible); borders are strong.
PLATE_COLORS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "yellow": (250, 222, 20),
    "orange": (255, 160, 40),
    "pink": (255, 150, 200),
    "cyan": (90, 220, 240),
    "green": (110, 200, 90),
}
BORDER_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "blue": (30, 70, 225),
    "purple": (140, 50, 200),
    "black": (25, 25, 25),
    "green": (20, 120, 40),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "diamond", "hexagon", "star")
TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted")  # the values of a shape's `pattern`
SIGN = "sign"
TEXT_COLOR = (15, 15, 15)  # every sign shares one text style: same font, same color
OUTLINE = (35, 35, 35)
# Glyphs that cannot be confused with one another at small sizes (no 0/O, 1/I, 8/B, 5/S, 2/Z, 6/G).
TEXT_ALPHABET = "ACEFHKLMNPRTUVWXY"
TEXT_DIGITS = "234579"

SUPERSAMPLE = 4  # shapes are drawn 4x larger and downsampled, so tiny shapes keep clean edges
SIGN_HEIGHT_PER_FONT = 1.55
SIGN_PAD_PER_FONT = 0.4


@dataclass
class SceneObject:
    """One drawn object a question may refer to.

    `color` is the fill color of a shape or the plate color of a sign; `pattern` is for shapes,
    `border`, `text` and `font_size` for signs. `box` is xyxy in original pixels (tight).
    """

    shape: str
    color: str
    box: list[float]
    pattern: str = ""
    border: str = ""
    text: str = ""
    font_size: int = 0
    tags: list[str] = field(default_factory=list)  # role in the question: target, lookalike, filler

    @property
    def is_sign(self) -> bool:
        return self.shape == SIGN

    @property
    def short_side(self) -> float:
        return min(self.box[2] - self.box[0], self.box[3] - self.box[1])

    def attr(self, name: str) -> str:
        return str(getattr(self, name))


@functools.lru_cache(maxsize=64)
def font(size: int) -> ImageFont.FreeTypeFont:
    """Pillow's embedded scalable TrueType font (Pillow >= 10.1), identical on every machine."""
    return ImageFont.load_default(size=size)  # type: ignore[return-value]


def sign_size(text: str, font_size: int) -> tuple[int, int]:
    """Plate width and height for `text` at `font_size`."""
    w = font(font_size).getlength(text) + 2 * SIGN_PAD_PER_FONT * font_size
    return math.ceil(w), math.ceil(SIGN_HEIGHT_PER_FONT * font_size)


def _unit_polygon(shape: str) -> list[tuple[float, float]]:
    """The outline of `shape`, normalised so its bounding box is exactly the unit square."""
    if shape == "square":
        pts = [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)]
    elif shape == "triangle":
        pts = [(0.5, 0.0), (1.0, 1.0), (0.0, 1.0)]
    elif shape == "diamond":
        pts = [(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)]
    elif shape == "hexagon":
        pts = [(math.cos(math.pi / 3 * k), math.sin(math.pi / 3 * k)) for k in range(6)]
    elif shape == "star":
        pts = [
            (
                (1.0 if k % 2 == 0 else 0.42) * math.cos(-math.pi / 2 + math.pi / 5 * k),
                (1.0 if k % 2 == 0 else 0.42) * math.sin(-math.pi / 2 + math.pi / 5 * k),
            )
            for k in range(10)
        ]
    else:
        raise ValueError(f"no polygon for shape {shape!r}")
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    x0, y0, sx, sy = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
    return [((x - x0) / sx, (y - y0) / sy) for x, y in pts]


def _contrast(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """White on dark fills, near-black on light ones, for stripes and dots."""
    luminance = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (30, 30, 30) if luminance > 150 else (250, 250, 250)


def _shape_sprite(obj: SceneObject) -> Image.Image:
    """An RGBA sprite of a shape with its pattern and outline, antialiased by supersampling."""
    w, h = round(obj.box[2] - obj.box[0]), round(obj.box[3] - obj.box[1])
    big = (w * SUPERSAMPLE, h * SUPERSAMPLE)
    fill = SHAPE_COLORS[obj.color]
    mark = _contrast(fill)
    layer = Image.new("RGB", big, fill)
    draw = ImageDraw.Draw(layer)
    if obj.pattern == "striped":
        band = max(SUPERSAMPLE, big[1] // 7)
        for y in range(band, big[1], 2 * band):
            draw.rectangle([0, y, big[0], y + band - 1], fill=mark)
    elif obj.pattern == "dotted":
        r = 0.17 * min(big)
        cx, cy = big[0] / 2, big[1] * (0.6 if obj.shape == "triangle" else 0.5)
        if obj.shape == "star":
            cy = big[1] * 0.55
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=mark)
    mask = Image.new("L", big, 0)
    line = max(SUPERSAMPLE, round(min(big) / 14))
    if obj.shape == "circle":
        ImageDraw.Draw(mask).ellipse([0, 0, big[0] - 1, big[1] - 1], fill=255)
        sprite = layer.convert("RGBA")
        sprite.putalpha(mask)
        ImageDraw.Draw(sprite).ellipse([0, 0, big[0] - 1, big[1] - 1], outline=OUTLINE, width=line)
    else:
        poly = [(x * (big[0] - 1), y * (big[1] - 1)) for x, y in _unit_polygon(obj.shape)]
        ImageDraw.Draw(mask).polygon(poly, fill=255)
        sprite = layer.convert("RGBA")
        sprite.putalpha(mask)
        ImageDraw.Draw(sprite).polygon(poly, outline=OUTLINE, width=line)
    return sprite.resize((w, h), Image.LANCZOS)


def _draw_sign(draw: ImageDraw.ImageDraw, obj: SceneObject) -> None:
    x0, y0, x1, y1 = obj.box
    h = y1 - y0
    border = max(1, round(h * 0.09))
    draw.rounded_rectangle(
        [x0, y0, x1 - 1, y1 - 1],
        radius=max(1, round(h * 0.18)),
        fill=PLATE_COLORS[obj.color],
        outline=BORDER_COLORS[obj.border],
        width=border,
    )
    draw.text(
        ((x0 + x1) / 2, (y0 + y1) / 2), obj.text, font=font(obj.font_size), fill=TEXT_COLOR, anchor="mm"
    )


def _muted(
    rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]
) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*sat), rng.uniform(*val))
    return round(r * 255), round(g * 255), round(b * 255)


def _background(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A muted color field with blotchy texture, built at quarter resolution and upscaled."""
    qw, qh = max(2, width // 4), max(2, height // 4)
    base = np.array(_muted(rng, (0.08, 0.3), (0.45, 0.75)), dtype=np.float32)
    cells = (max(2, qh // 40), max(2, qw // 40))
    # Mostly brightness variation with a little hue, so the field never looks like a named color.
    coarse = rng.normal(0.0, 26.0, (*cells, 1)) + rng.normal(0.0, 7.0, (*cells, 3))
    field_img = Image.fromarray(np.clip(coarse + 128.0, 0, 255).astype(np.uint8)).resize(
        (qw, qh), Image.BICUBIC
    )
    grain = rng.normal(0.0, 9.0, (qh, qw, 1)).astype(np.float32)
    quarter = np.asarray(field_img, dtype=np.float32) - 128.0 + base + grain
    return Image.fromarray(np.clip(quarter, 0, 255).astype(np.uint8)).resize((width, height), Image.BILINEAR)


def _clutter(im: Image.Image, rng: np.random.Generator, object_px: float) -> None:
    """Desaturated patches, pebbles and twigs at the objects' scale: busy, but never a named object."""
    width, height = im.size
    draw = ImageDraw.Draw(im)
    area = width * height
    for _ in range(int(rng.integers(6, 14))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(0.04, 0.18) * width, rng.uniform(0.04, 0.18) * height
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_muted(rng, (0.05, 0.25), (0.35, 0.8)))
    n_pebbles = int(min(4000, area / (object_px * object_px) * 0.06))
    for _ in range(n_pebbles):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        r = object_px * rng.uniform(0.25, 1.4)
        k = int(rng.integers(5, 9))
        angles = np.sort(rng.uniform(0, 2 * math.pi, k))
        radii = r * rng.uniform(0.45, 1.0, k) * np.array([1.0, rng.uniform(0.4, 0.8)])[np.arange(k) % 2]
        pts = [(cx + rr * math.cos(a), cy + rr * math.sin(a)) for a, rr in zip(angles, radii)]
        draw.polygon(pts, fill=_muted(rng, (0.0, 0.22), (0.25, 0.9)))
    n_twigs = int(min(3000, area / (object_px * object_px) * 0.05))
    for _ in range(n_twigs):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        length, angle = object_px * rng.uniform(0.8, 4.0), rng.uniform(0, 2 * math.pi)
        draw.line(
            [(x, y), (x + length * math.cos(angle), y + length * math.sin(angle))],
            fill=_muted(rng, (0.0, 0.2), (0.15, 0.6)),
            width=max(1, round(object_px * rng.uniform(0.04, 0.12))),
        )


def render(width: int, height: int, objects: list[SceneObject], seed: int) -> Image.Image:
    """Draw the scene: background, clutter, then the objects (which never overlap each other)."""
    rng = np.random.default_rng(seed)
    im = _background(width, height, rng)
    sizes = [o.short_side for o in objects] or [min(width, height) / 50]
    _clutter(im, rng, float(np.median(sizes)))
    draw = ImageDraw.Draw(im)
    for obj in objects:
        if obj.is_sign:
            _draw_sign(draw, obj)
        else:
            sprite = _shape_sprite(obj)
            im.paste(sprite, (round(obj.box[0]), round(obj.box[1])), sprite)
    return im
