#!/usr/bin/env bash
# Make (once) a virtual environment with LLaMA-Factory 0.9.5 that trains on a CPU-only machine, for the
# integration test of the LLaMA-Factory hand-off (tests/test_train_sft.py) and benchmarks. Prints the path of
# llamafactory-cli on stdout (last line); everything else goes to stderr. Building takes minutes; a run killed
# half-way is simply rerun (the venv is marked ready only at the end), later runs just print the path.
#   usage: tools/llamafactory-cpu-env.sh [VENV_DIR]     (default: $HOME/.cache/minio3/llamafactory-cpu)
# LLaMA-Factory pins transformers/datasets versions that clash with verl, so it lives in its own venv and
# is called as a program. On a GPU machine a plain `pip install llamafactory` is all a user needs; the two
# fixes below exist only because PyPI's torchvision/torchaudio wheels are CUDA builds that cannot load their
# native ops next to a CPU torch.
set -euo pipefail
VENV=${1:-$HOME/.cache/minio3/llamafactory-cpu}
if [[ -x $VENV/bin/llamafactory-cli && -f $VENV/.ready ]]; then echo "$VENV/bin/llamafactory-cli"; exit 0; fi
python3 -m venv "$VENV"
PY=$VENV/bin/python
"$PY" -m pip install -q --upgrade pip >&2
"$PY" -m pip install -q torch==2.13.0 >&2                  # the CPU wheel, where the machine provides one
echo "torch==2.13.0" >"$VENV/constraints.txt"              # keep pip from swapping in a CUDA torch
"$PY" -m pip install -q -c "$VENV/constraints.txt" llamafactory==0.9.5 >&2
SP=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# torchvision: register its two fake ops only where its native library loaded
sed -i 's|^@torch.library.register_fake("torchvision::\(q\?nms\)")|@(torch.library.register_fake("torchvision::\1") if torchvision.extension._has_ops() else (lambda f: f))|' \
  "$SP/torchvision/_meta_registrations.py"
# torchaudio: without its native libraries the pure-Python parts still import
rm -f "$SP"/torchaudio/lib/*.so
"$PY" -c "import torchvision, torchaudio, transformers" >&2
"$VENV/bin/llamafactory-cli" version >/dev/null
touch "$VENV/.ready"
echo "$VENV/bin/llamafactory-cli"
