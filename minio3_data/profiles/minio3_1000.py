"""`minio3-1000`: the `minio3` profile with boxes in Qwen3-VL's native grounding frame, whole numbers from 0 to
1000 of the source's width and height (reference/qwen3vl.md), for Qwen3-VL students and teachers that ground
best in it. Everything else is `minio3`'s; the action every stage stores is still the canonical relative one
(frame.py converts both ways).
"""

from __future__ import annotations

from dataclasses import replace

from .frame import PER_MILLE
from .minio3 import PROFILE as MINIO3
from .minio3 import system_prompt

PROFILE = replace(
    MINIO3, name="minio3-1000", summary="ours, boxes as 0-1000 integers: Qwen3-VL's native grounding",
    system_prompt=system_prompt(PER_MILLE), frame=PER_MILLE,
)  # fmt: skip
