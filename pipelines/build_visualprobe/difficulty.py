"""The difficulty rule: what the model can see at first glance, and how many look-alikes compete.

Two measurements, each worth 0-2 points:
  size  - the target's shorter side in the first view (the original downscaled to <= 2,000,000 px);
          with several targets (counting, relative position) the smallest one counts;
  crowd - the number of look-alike distractors (objects that meet some but not all of the
          description's constraints; for COCO-style data, other instances of the same category or
          supercategory).
Points 0-1 are easy, 2 medium, 3-4 hard. Items are generated *aiming* at a class, but the class is
always assigned by this rule from what was actually drawn. The rule is written into manifest.json
and the README from `RULE` / `rule_markdown()`, so there is one source of truth.
"""

from __future__ import annotations

import random

from minio3_data.display import FIRST_VIEW_MAX_PIXELS, first_view_size
from minio3_data.records import DIFFICULTIES

from .layout import ObjectBox

SIZE_CUTS = (20.0, 10.0)  # first-view px: >= 20 -> 0 points, [10, 20) -> 1, < 10 -> 2
CROWD_CUTS = (5, 13)  # look-alikes: <= 4 -> 0 points, 5..12 -> 1, >= 13 -> 2
CLASS_BY_POINTS = ("easy", "easy", "medium", "hard", "hard")
# The released VisualProbe test split: Easy 141, Medium 268, Hard 106.
RELEASED_TEST_SPLIT = {"easy": 141, "medium": 268, "hard": 106}

RULE: dict[str, object] = {
    "first_view_max_pixels": FIRST_VIEW_MAX_PIXELS,
    "size": "shorter side of the (smallest) target box after scaling the image to the first view",
    "size_points": {
        "0": f">= {SIZE_CUTS[0]:g} px",
        "1": f"{SIZE_CUTS[1]:g}-{SIZE_CUTS[0]:g} px",
        "2": f"< {SIZE_CUTS[1]:g} px",
    },
    "crowd": "number of look-alike distractors",
    "crowd_points": {
        "0": f"<= {CROWD_CUTS[0] - 1}",
        "1": f"{CROWD_CUTS[0]}-{CROWD_CUTS[1] - 1}",
        "2": f">= {CROWD_CUTS[1]}",
    },
    "classes": {"easy": "0-1 points", "medium": "2 points", "hard": "3-4 points"},
    "test_split_ratio": RELEASED_TEST_SPLIT,
}


def first_view_scale(width: int, height: int) -> float:
    """How much the first view shrinks the original (1.0 when it already fits)."""
    return first_view_size(width, height)[0] / width


def view_px(boxes: list[ObjectBox], width: int, height: int) -> float:
    """The smallest target's shorter side, in first-view pixels."""
    scale = first_view_scale(width, height)
    return min(min(b[2] - b[0], b[3] - b[1]) for b in boxes) * scale


def size_points(px: float) -> int:
    return 0 if px >= SIZE_CUTS[0] else 1 if px >= SIZE_CUTS[1] else 2


def crowd_points(lookalikes: int) -> int:
    return 0 if lookalikes < CROWD_CUTS[0] else 1 if lookalikes < CROWD_CUTS[1] else 2


def classify(px: float, lookalikes: int) -> str:
    """The difficulty class from first-view target size and look-alike count."""
    return CLASS_BY_POINTS[size_points(px) + crowd_points(lookalikes)]


def quotas(n: int, ratio: dict[str, int] = RELEASED_TEST_SPLIT) -> dict[str, int]:
    """Split n items across difficulties in the released proportions (largest remainder)."""
    total = sum(ratio.values())
    exact = {d: n * ratio[d] / total for d in DIFFICULTIES}
    out = {d: int(exact[d]) for d in DIFFICULTIES}
    for d in sorted(DIFFICULTIES, key=lambda d: exact[d] - out[d], reverse=True)[: n - sum(out.values())]:
        out[d] += 1
    return out


def schedule(n: int, rng: random.Random) -> list[str]:
    """The difficulty each of n items aims at: the quotas, in a seeded random order."""
    out = [d for d, k in quotas(n).items() for _ in range(k)]
    rng.shuffle(out)
    return out


def rule_markdown() -> str:
    """The rule as a README table."""
    return "\n".join(
        [
            (
                f"| points | target's shorter side in the first view (<= {FIRST_VIEW_MAX_PIXELS:,} px) "
                "| look-alike distractors |"
            ),
            "|---|---|---|",
            f"| 0 | >= {SIZE_CUTS[0]:g} px | <= {CROWD_CUTS[0] - 1} |",
            f"| 1 | {SIZE_CUTS[1]:g}-{SIZE_CUTS[0]:g} px | {CROWD_CUTS[0]}-{CROWD_CUTS[1] - 1} |",
            f"| 2 | < {SIZE_CUTS[1]:g} px | >= {CROWD_CUTS[1]} |",
            "",
            "Sum of both: 0-1 = easy, 2 = medium, 3-4 = hard.",
        ]
    )
