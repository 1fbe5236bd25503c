"""Shared fixtures: a tiny synthetic dataset built once per session with the real builder, and an export for
Qwen3-VL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from export_fixtures import make_run

from minio3_data.families import get_family
from pipelines.build_visualprobe import build_visualprobe
from pipelines.export_llamafactory import export_run

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


@pytest.fixture(scope="session")
def qwen3_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/export_fixtures.py's run exported for Qwen3-VL (read only)."""
    tmp = tmp_path_factory.mktemp("qwen3-export")
    out = tmp / "export"
    export_run(make_run(tmp), out, family=get_family("qwen3-vl"), workers=1, progress=False)
    return out
