"""Shared fixtures: a tiny synthetic dataset built once per session with the real builder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipelines.build_visualprobe import build_visualprobe

# keep matplotlib and the HF stack quiet and offline in every test
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 train + 3 test synthetic items with small scenes (long side 1200-2000 px)."""
    out = tmp_path_factory.mktemp("data") / "vp"
    build_visualprobe("synthetic", out, train=10, test=3, seed=7, long_side=(1200, 2000), workers=2)
    return out
