"""LLaMA-Factory's own CPU environment for the tests that run it (the SFT training test, the RL token-parity
test): built once by tools/llamafactory-cpu-env.sh, then reused; the tiny models built with its Python.

CI must prove what these tests prove: with CI set (non-empty) a test that cannot run fails; elsewhere it skips.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[1]
LF_ENV_SCRIPT = REPO / "tools" / "llamafactory-cpu-env.sh"
LF_INSTALL_TIMEOUT_S = 1500  # the first run builds the venv (minutes); later runs only print the cached path
# the first LLaMA-Factory test also pays for the install and the tiny model: its pytest-timeout must not cut them
LF_TEST_TIMEOUT_S = LF_INSTALL_TIMEOUT_S + 600 + 300 + 600 + 300


def cannot_run(reason: str) -> NoReturn:
    """CI must prove training: with CI set (non-empty) a test that cannot run fails; elsewhere it skips."""
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so LLaMA-Factory must run, but {reason}", pytrace=False)
    pytest.skip(reason)


def llamafactory_cli(script: Path = LF_ENV_SCRIPT, timeout: float = LF_INSTALL_TIMEOUT_S) -> Path:
    """Run `script` (it builds LLaMA-Factory's CPU venv once, then reuses it) and return its llamafactory-cli."""
    if not script.is_file():
        cannot_run(f"{script} not found")
    try:  # its own session, so that a timeout kills pip too, not only bash (pip would hold the pipes open)
        proc = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)  # fmt: skip
    except OSError as e:
        cannot_run(f"cannot start {script}: {e}")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        cannot_run(
            f"{script} did not finish within {timeout:g} s (building the venv; rerun to resume): {err[-2000:]}"
        )
    if proc.returncode != 0:
        cannot_run(f"{script} failed with exit code {proc.returncode}: {err[-3000:]}")
    lines = out.strip().splitlines()
    cli = Path(lines[-1]) if lines else None
    if cli is None or not os.access(cli, os.X_OK):
        cannot_run(f"{script} printed no executable llamafactory-cli path (stdout: {out[-500:]!r})")
    return cli


TINY_BUILDERS = {"qwen2.5-vl": "tiny_qwen25vl.py", "qwen3-vl": "tiny_qwen3vl.py"}  # model family -> its builder


def build_tiny_model(lf_cli: Path, out: Path, family: str = "qwen2.5-vl", *options: str) -> Path:
    """The tiny random-weight model of `family` (tests/tiny_qwen25vl.py, tests/tiny_qwen3vl.py with `options`),
    built with LLaMA-Factory's Python, which has the torchvision its video processor needs."""
    done = subprocess.run(
        [str(lf_cli.parent / "python"), str(REPO / "tests" / TINY_BUILDERS[family]), str(out), *options],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def offline_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "DISABLE_VERSION_CHECK": "0", "WANDB_DISABLED": "true"}  # fmt: skip
