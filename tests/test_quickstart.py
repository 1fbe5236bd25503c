"""The README's main command: dataset -> scripted synthesis -> LLaMA-Factory export, offline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from datasets import load_dataset

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_end_to_end(tmp_path):
    out = tmp_path / "qs"
    res = subprocess.run(
        [sys.executable, "-m", "cli", "quickstart", "--out", str(out), "--train", "6", "--test", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert "train-sft --export" in res.stdout
    for split in ("train", "test"):
        assert len(load_dataset("parquet", data_files=str(out / f"dataset/{split}.parquet"), split="train")) > 0
    stats = json.loads((out / "run/stats.json").read_text())
    assert stats["attempts"] == 12 and 0 < stats["kept"] <= 12
    rows = json.loads((out / "sft/minio3_coldstart.json").read_text())
    assert len(rows) == stats["kept"]
    for row in rows:
        assert sum(t["value"].count("<image>") for t in row["conversations"]) == len(row["images"])
        assert all((out / "sft" / p).is_file() for p in row["images"])
    info = json.loads((out / "sft/dataset_info.json").read_text())
    assert info["minio3_coldstart"]["formatting"] == "sharegpt"
    again = subprocess.run([sys.executable, "-m", "cli", "quickstart", "--out", str(out)], cwd=ROOT,
                           capture_output=True, text=True)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
