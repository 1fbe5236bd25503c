"""`deepeyes-hrbench-fixed`: `deepeyes-hrbench` with the model's numbers mapped from the first view it saw to
the original (deepeyes_hrbench.py says why)."""

from __future__ import annotations

from dataclasses import replace

from .deepeyes_hrbench import PROFILE as HRBENCH

PROFILE = replace(
    HRBENCH, name="deepeyes-hrbench-fixed",
    summary="DeepEyes' HR-Bench eval with its coordinate bug fixed: numbers mapped from the first view",
    maps_to_original=True,
)  # fmt: skip
