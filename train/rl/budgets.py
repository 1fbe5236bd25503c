"""The turn and image budgets of RL, defined once: the released run's (max_generation_round 6 in training and
12 in validation; limit_mm_per_prompt 12 images, the first view included).

Each data row carries its split's budget (data.py), which the agent loop enforces; the launcher's defaults and
verl's outer caps (config.py) are these numbers too."""

from __future__ import annotations

from dataclasses import dataclass

TRAIN_MAX_TURNS = 6
VAL_MAX_TURNS = 12
MAX_IMAGES = 12


@dataclass(frozen=True)
class TurnBudget:
    """What a trajectory of one split may use: assistant turns (a zoom at the last is over-turn), and images in
    context, the first view included."""

    max_turns: int
    max_images: int = MAX_IMAGES
