"""Non-overlapping placement of object boxes, so no object ever hides another."""

from __future__ import annotations

import random

ObjectBox = list[float]  # an object's xyxy box in original pixels, as stored in ProbeItem.target_bbox


class Placer:
    """Rejection-samples integer boxes that keep a gap from every box placed before."""

    def __init__(self, width: int, height: int, gap: float, edge: float) -> None:
        self.width, self.height, self.gap, self.edge = width, height, gap, edge
        self.boxes: list[ObjectBox] = []

    def free(self, box: ObjectBox) -> bool:
        g = self.gap
        return all(
            box[2] + g <= b[0] or b[2] + g <= box[0] or box[3] + g <= b[1] or b[3] + g <= box[1]
            for b in self.boxes
        )

    def place(
        self, w: int, h: int, rng: random.Random, region: ObjectBox | None = None, tries: int = 300
    ) -> ObjectBox | None:
        """A free box of size w x h inside `region` (default: the image minus its edge), or None."""
        x_lo, y_lo, x_hi, y_hi = region or [0, 0, self.width, self.height]
        x_lo, y_lo = max(x_lo, self.edge), max(y_lo, self.edge)
        x_hi, y_hi = min(x_hi, self.width - self.edge) - w, min(y_hi, self.height - self.edge) - h
        if x_hi < x_lo or y_hi < y_lo:
            return None
        for _ in range(tries):
            x, y = rng.randint(int(x_lo), int(x_hi)), rng.randint(int(y_lo), int(y_hi))
            box = [float(x), float(y), float(x + w), float(y + h)]
            if self.free(box):
                self.boxes.append(box)
                return box
        return None

    def place_at(self, box: ObjectBox) -> bool:
        """Claim an exact box if it is inside the image and free."""
        inside = box[0] >= self.edge and box[1] >= self.edge
        inside = inside and box[2] <= self.width - self.edge and box[3] <= self.height - self.edge
        if inside and self.free(box):
            self.boxes.append(box)
            return True
        return False


def around(box: ObjectBox, radius: float) -> ObjectBox:
    """The square region of half-size `radius` centred on `box`."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return [cx - radius, cy - radius, cx + radius, cy + radius]


def union(boxes: list[ObjectBox]) -> ObjectBox:
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]
