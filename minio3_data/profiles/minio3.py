"""The `minio3` profile: our cleaned-up protocol, for models trained from scratch with this toolkit.

The released structure (tags, JSON keys, relative coordinates, crop geometry) with: prompts in plain English,
observations numbered by crop (no drift after an error turn), a turn without an action answered with an error
turn, the first complete action of a turn run, loose JSON read tolerantly (teachers and policies alike),
coordinates beyond [0, 1] by more than COORD_TOLERANCE refused, messages that say how to fix the box, and
display sizes rounded up (display.MINIO3_DISPLAY). docs/protocol.md lists every difference and why.
Boxes are written in the profile's coordinate frame (frame.py): relative 0-1 here, Qwen3-VL's native 0-1000
integers in its `minio3-1000` variant (minio3_1000.py); the parsed action is always the canonical relative one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..display import MAX_ASPECT, MINIO3_DISPLAY, PixelBox
from ..protocol import (
    Action, Answer, Malformed, Zoom, canonical_turn, first_action, is_answer, restore_stop, source_index, source_name,
    is_number, trim_turn,
)
from .base import ProtocolProfile
from .frame import RELATIVE, Frame
from .tolerant import FORMAT_HINT, FOUR_NUMBERS, read_arguments, short

COORD_TOLERANCE = 0.02  # coordinates in [-tol, 1 + tol] of the frame are clamped to it; beyond that, refused

SYSTEM_TEMPLATE = (
    "You are a helpful assistant who answers the user's question about an image. "
    "Think step by step and write your reasoning between <think> and </think>. "
    "When a detail is too small or unclear to see, zoom in on a region by writing "
    '<grounding>{"bbox_2d": [x0, y0, x1, y1], "source": "original_image"}</grounding>, '
    "where (x0, y0) is the top-left and (x1, y1) the bottom-right corner of the region, "
    "{extent}. "
    "The source is 'original_image' or 'observation_i' to zoom further into the i-th zoomed-in observation. "
    "When you are sure, give the final answer between <answer> and </answer>."
)


def system_prompt(frame: Frame) -> str:
    return SYSTEM_TEMPLATE.replace("{extent}", frame.extent)


SYSTEM_PROMPT = system_prompt(RELATIVE)

OBSERVATION_TEMPLATE = (
    "After the above Action {action}, here is the zoom-in image (Observation {observation}):\n"
    "{image}.\n"
    "Continue your reasoning between <think> and </think>. If needed, zoom in again on the original image "
    "or on any observation by writing <grounding> and </grounding> as before. "
    "If the final answer is confirmed, give it between <answer> and </answer>."
)

ERROR_TEMPLATE = (
    "ERROR occurs during grounding. Error Information: {message}.\n"
    "Analyze what went wrong and continue your reasoning between <think> and </think>; then either zoom "
    "with a corrected <grounding> or give your final answer between <answer> and </answer>."
)

NO_ACTION = "no action found; end the turn with <grounding>...</grounding> or <answer>...</answer>"


def _coordinate(value: object, frame: Frame) -> float:
    """A valid coordinate of `frame`, clamped to it when within COORD_TOLERANCE of it, as the canonical one."""
    if not is_number(value):
        raise ValueError(FOUR_NUMBERS)
    try:
        v = float(value)
    except OverflowError:  # an integer too large for a float: far outside [0, 1]
        v = math.inf
    if isinstance(value, float) and not math.isfinite(v):
        raise ValueError(f"bbox_2d holds a non-finite number (nan or inf); use four numbers {frame.between}")
    v = frame.canonical(v)
    if v < -COORD_TOLERANCE or v > 1 + COORD_TOLERANCE:
        raise ValueError(
            f"coordinate {short(value)} is outside {frame.range}; coordinates are relative to the source image, "
            f"whose width and height are {frame.unit}"
        )
    return min(1.0, max(0.0, v))


def _zoom(profile: Minio3Profile, args: object, num_observations: int | None) -> Zoom:
    if not isinstance(args, dict) or "bbox_2d" not in args:
        raise ValueError(f'the grounding must be one object with "bbox_2d" and "source"; {FORMAT_HINT}')
    coords = args["bbox_2d"]
    if not isinstance(coords, (list, tuple)) or len(coords) != 4:
        raise ValueError(FOUR_NUMBERS)
    x0, y0, x1, y1 = (_coordinate(c, profile.frame) for c in coords)
    source = args.get("source", source_name(0))
    if not isinstance(source, str):
        raise ValueError("source must be 'original_image' or 'observation_k'")
    index = profile.existing_source(source.strip().lower(), num_observations)
    return Zoom((x0, y0, x1, y1), source_name(index))


@dataclass(frozen=True)
class Minio3Profile(ProtocolProfile):
    """Our protocol: the first complete action of a turn runs; every refusal explains itself. Its boxes are
    read from and written in `frame`."""

    def error_text(self, message: str) -> str:
        """The message's own final period is dropped: the template adds one."""
        return self.error_template.format(message=message.rstrip("."))

    def trim_turn(self, text: str) -> str:
        return trim_turn(text)

    def stored_turn(self, text: str, action: Zoom | Answer) -> str:
        """The canonical rendering, its box written in the profile's frame."""
        return canonical_turn(text, self.frame.in_frame(action))

    def in_words(self, text: str, action: Zoom | Answer) -> str:
        return text if self.frame == RELATIVE else self.stored_turn(text, action)

    def parse_turn(self, text: str, num_observations: int | None = None) -> Action:
        m = first_action(restore_stop(text))
        if m is None:
            return Malformed(NO_ACTION)
        if is_answer(m):
            return Answer(m.group(1).strip())
        try:
            return _zoom(self, read_arguments(m.group(1)), num_observations)
        except ValueError as e:
            return Malformed(str(e))

    def resolve_source(self, source: str) -> int:
        return source_index(source)

    def missing_source(self, source: str, num_observations: int) -> str:
        return f"{source} does not exist yet; there are {num_observations} observation(s)"

    def box_on_source(self, bbox: tuple, size: tuple[int, int]) -> PixelBox | str:
        """Scaled to the source's pixels, int-truncated and clamped to [0, W-1] x [0, H-1]; refused when
        narrower or shorter than 1 px or elongated to MAX_ASPECT or more, naming the box and the fix."""
        if not all(math.isfinite(v) for v in bbox):
            return f"bbox_2d holds a non-finite number; use four numbers {self.frame.between}"
        shown = [self.frame.written(v) for v in bbox]  # as the model wrote it
        w, h = size
        x0, x1 = (min(max(int(v * w), 0), w - 1) for v in (bbox[0], bbox[2]))
        y0, y1 = (min(max(int(v * h), 0), h - 1) for v in (bbox[1], bbox[3]))
        cw, ch = x1 - x0, y1 - y0
        if cw < 1 or ch < 1:
            return (
                f"the box {shown} is {max(cw, 0)}x{max(ch, 0)} pixels on the {w}x{h} source; x1 must be "
                "greater than x0 and y1 greater than y0, with (x0, y0) the top-left corner"
            )
        if max(cw / ch, ch / cw) >= MAX_ASPECT:
            return (
                f"the box {shown} is {cw}x{ch} pixels, an aspect ratio of {max(cw / ch, ch / cw):.0f}; "
                f"it must stay below {MAX_ASPECT}, so make the region less elongated"
            )
        return x0, y0, x1, y1


PROFILE = Minio3Profile(
    name="minio3",
    summary="ours, cleaned up",
    system_prompt=SYSTEM_PROMPT,
    observation_template=OBSERVATION_TEMPLATE,
    error_template=ERROR_TEMPLATE,
    display=MINIO3_DISPLAY,
)
