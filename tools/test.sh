#!/usr/bin/env bash
# The README's test command, which `.ci/run` calls: on a fresh Debian machine it installs everything the
# tests need (Debian's chromium for the `minio3 view` browser tests, a .venv with torch first, then the
# test and rl extras), then runs the whole suite; the LLaMA-Factory training test builds its own CPU
# environment (tools/llamafactory-cpu-env.sh). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium
fi
# torch first: the rl extra's verl would otherwise pull a CUDA build (the CPU wheel is local here)
python3 -m venv .venv
. .venv/bin/activate
pip install torch==2.13.0
pip install -e ".[test,rl]"
python -m pytest "$@"
