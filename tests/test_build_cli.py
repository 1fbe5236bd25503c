"""`minio3 build-visualprobe`: options in, a summary out; refusals are one line; a kill leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from cli import app

runner = CliRunner()
SMALL = ["--long-side", "512:768", "--workers", "1"]


def test_builds_and_summarises(tmp_path: Path) -> None:
    out = tmp_path / "vp"
    res = runner.invoke(
        app,
        [
            "build-visualprobe",
            "--out",
            str(out),
            "--train",
            "2",
            "--test",
            "3",
            *SMALL,
            "--emit-mini-o3-json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (
        "train: 2 items" in res.output and "test: 3 items" in res.output and "released layout" in res.output
    )
    assert (out / "VisualProbe_Medium" / "val.json").is_file()
    assert json.loads((out / "manifest.json").read_text())["counts"]["test"]["total"] == 3


def test_non_empty_out_is_refused_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "vp"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["build-visualprobe", "--out", str(out), "--train", "1", "--test", "1", *SMALL]
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "pass --overwrite" in res.output and "Traceback" not in res.output
    assert (out / "keep.txt").read_text() == "mine"
    res = runner.invoke(app, [*args, "--overwrite"])
    assert res.exit_code == 0, res.output
    assert not (out / "keep.txt").exists() and (out / "train.parquet").is_file()


def test_option_errors_are_one_line(tmp_path: Path) -> None:
    base = ["build-visualprobe", "--out", str(tmp_path / "vp")]
    res = runner.invoke(app, [*base, "--source", "coco"])
    assert res.exit_code == 2 and "--source coco needs --images DIR" in res.output
    res = runner.invoke(app, [*base, "--source", "flickr"])
    assert res.exit_code == 2 and "use one of synthetic, coco, official" in res.output
    res = runner.invoke(app, [*base, "--long-side", "big"])
    assert res.exit_code == 2 and "LOW:HIGH" in res.output
    res = runner.invoke(app, [*base, "--long-side", "100:200"])
    assert res.exit_code == 2 and "long side range 100:200" in res.output
    assert not (tmp_path / "vp").exists()


def test_help_has_a_copy_paste_example() -> None:
    res = runner.invoke(app, ["build-visualprobe", "--help"])
    assert res.exit_code == 0 and "minio3 build-visualprobe --source synthetic --out" in res.output


def test_a_killed_build_leaves_no_half_dataset(tmp_path: Path) -> None:
    out = tmp_path / "vp"
    cmd = [
        sys.executable,
        "-c",
        "from cli import app; app()",
        "build-visualprobe",
        "--out",
        str(out),
        "--train",
        "400",
        "--test",
        "0",
        "--long-side",
        "512:768",
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".vp.tmp-*/images/train/*.jpg")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob(".vp.tmp-*/images/train/*.jpg")), "the build never started writing"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert not out.exists()  # only the hidden temp sibling remains; --out was never half-written
