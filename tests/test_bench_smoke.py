"""Every benchmark still runs: each bench script (a bench/*.py with a main guard, and each bench/*.sh) runs with
--smoke (tiny sizes, the same code path) and must exit 0. The scripts are found by glob, so a new bench cannot be
left out, and one without --smoke fails here. Benches that need verl skip without it (and fail under CI)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from needs_verl import require_verl

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted(p for p in (ROOT / "bench").glob("*.py") if 'if __name__ == "__main__":' in p.read_text())
BENCHES += sorted((ROOT / "bench").glob("*.sh"))
NEEDS_VERL = re.compile(r"^(from|import) verl\b|minio3 train-rl", re.M)


def test_the_benches_are_found():
    assert {"synth.py", "zoom.py", "rl_smoke.sh"} <= {p.name for p in BENCHES}


@pytest.mark.parametrize("bench", BENCHES, ids=[p.name for p in BENCHES])
def test_bench_runs_with_smoke(bench: Path):
    if NEEDS_VERL.search(bench.read_text()):
        require_verl()
    command = ["bash", str(bench)] if bench.suffix == ".sh" else [sys.executable, str(bench)]
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    res = subprocess.run([*command, "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{bench.name} --smoke exited {res.returncode}:\n{(res.stdout + res.stderr)[-3000:]}"
