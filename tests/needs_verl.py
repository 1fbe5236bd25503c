"""Tests of the `rl` extra need verl: without it they skip on a developer's machine, and fail under CI (CI set
and non-empty), which installs the extra and must prove the plug-ins, as tests/test_train_sft.py does for
LLaMA-Factory."""

from __future__ import annotations

import os

import pytest

INSTALL = "pip install torch==2.13.0 && pip install -e '.[test,rl]'"


def require_verl() -> None:
    """Skip (fail under CI) when verl cannot be imported. Call it at a test's start or in a fixture."""
    try:
        import verl  # noqa: F401
    except ImportError as e:
        reason = f"verl is not importable ({e}); install the rl extra: {INSTALL}"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the rl extra must be installed, but {reason}", pytrace=False)
        pytest.skip(reason)
