"""The coordinate frame a profile writes boxes in, and its conversion to the canonical action.

Every stage stores and computes with one canonical action: bbox_2d relative to the source, 0 to 1 (Turn.bbox,
zoom.py, the viewer, the replay that re-derives crops). A model may write boxes in another frame: Qwen3-VL's
native grounding is integers from 0 to 1000 of the source's width and height. A profile in such a frame reads
a box into the canonical action (k / 1000) where it parses a turn and writes the canonical action back in its
frame (round(x * 1000)) where it renders one, so the round trip of a box the model wrote is exact, and the crop
it names is the one its integers name, within the one pixel a float product may lose.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..protocol import Answer, Zoom


@dataclass(frozen=True)
class Frame:
    """Relative coordinates (`scale` 1, numbers from 0 to 1) or integers on a 0..scale grid."""

    scale: int
    unit: str  # the source's width and height in this frame, as messages say it
    extent: str  # how the system prompt says it, after "where (x0, y0) is the top-left ... corner of the region, "

    @property
    def range(self) -> str:
        return f"[0, {self.scale}]"

    @property
    def between(self) -> str:
        return f"between 0 and {self.scale}"

    def canonical(self, value: float) -> float:
        """A coordinate as written in this frame, as the canonical relative one."""
        return value / self.scale

    def written(self, value: float) -> float | int:
        """A canonical relative coordinate as this frame writes it."""
        return value if self.scale == 1 else round(value * self.scale)

    def in_frame(self, action: Zoom | Answer) -> Zoom | Answer:
        """An action with its box written in this frame (an answer as it is)."""
        if isinstance(action, Answer) or self.scale == 1:
            return action
        return Zoom(tuple(self.written(v) for v in action.bbox), action.source)  # type: ignore[arg-type]


RELATIVE = Frame(1, "1.0", "with the width and height of the source image both taken as 1.0")
PER_MILLE = Frame(
    1000, "1000", "as whole numbers from 0 to 1000, with the width and height of the source image both taken as 1000"
)
