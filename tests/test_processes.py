"""Worker processes: they die with the command that feeds them (kill -9 included), a dead worker is one line
naming its task, and the temp dir a killed build leaves is gone after the rerun."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from export_fixtures import make_dataset, make_run, record
from typer.testing import CliRunner

from cli import app
from minio3_data.fsutil import atomic_dir
from pipelines.parallel import WorkerDiedError, ordered_map

REPO = Path(__file__).resolve().parents[1]
SETTLE_S = 10  # how long a dead parent's workers may take to end


def _proc(pid: int, name: str) -> str:
    """/proc/PID/NAME, or "" when the process is gone."""
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of a process, or None when it is gone."""
    fields = _proc(pid, "stat").rsplit(")", 1)[-1].split()
    return (int(fields[1]), fields[0], int(fields[19])) if fields else None


def _children(pid: int) -> dict[int, int]:
    """The live descendants of `pid`, each with its start time (so a reused pid is not taken for it)."""
    pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
    table = {p: s for p in pids if (s := _stat(p))}
    found: dict[int, int] = {}
    parents = {pid}
    while parents:
        parents = {c for c, s in table.items() if s[0] in parents and s[1] != "Z" and c not in found}
        found |= {c: table[c][2] for c in parents}
    return found


def _running(pid: int) -> bool:
    """On a CPU or waiting for one (state R), not sleeping on a queue."""
    return (_stat(pid) or (0, "", 0))[1] == "R"


def _alive(procs: dict[int, int]) -> list[int]:
    """Those of `procs` still running (a zombie has ended; nothing may reap it in a container)."""
    return [p for p, start in procs.items() if (s := _stat(p)) and s[2] == start and s[1] != "Z"]


def _workers(proc: subprocess.Popen, n: int, ready: Callable[[], bool] = lambda: True) -> dict[int, int]:
    """Wait until `proc` runs `n` pool workers (multiprocessing's resource tracker is none) and `ready()`."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        found = _children(proc.pid)
        if sum("resource_tracker" not in _proc(p, "cmdline") for p in found) >= n and ready():
            return found
        time.sleep(0.05)
    raise AssertionError(f"{proc.args}: never ran {n} workers (exit code {proc.poll()})")


def _cli(*args: str) -> list[str]:
    """A `minio3` command line, with 2 workers."""
    return [sys.executable, "-c", "from cli import app; app()", *args, "--workers", "2"]


@contextlib.contextmanager
def _parent_killed(cmd: list[str], ready: Callable[[], bool] = lambda: True) -> Iterator[dict[int, int]]:
    """Run `cmd` and SIGKILL it (only it, as the OOM killer would) once its 2 workers run (and `ready()`);
    yields its workers, which are killed on leaving if still alive."""
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: dict[int, int] = {}
    try:
        workers = _workers(proc, 2, ready)
        proc.kill()
        proc.wait(10)
        yield workers
    finally:
        proc.kill()
        for pid in _alive(workers):
            os.kill(pid, signal.SIGKILL)


def _survivors(workers: dict[int, int]) -> list[int]:
    """Those of `workers` still alive SETTLE_S after their parent died."""
    deadline = time.monotonic() + SETTLE_S
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(workers)


def _build(out: Path, long_side: str = "512:768") -> list[str]:
    """A build of 400 scenes, long enough to be killed while its workers run."""
    return _cli("build-visualprobe", "--out", str(out), "--train", "400", "--test", "0",
                "--long-side", long_side)  # fmt: skip


def _images_written(tmp_path: Path) -> Callable[[], bool]:
    return lambda: bool(list(tmp_path.glob(".vp.tmp-*/images/train/*.jpg")))


def _big_run(tmp_path: Path, n: int) -> Path:
    """A run dir of `n` kept trajectories with two zooms each (its attempts too, so it can be viewed)."""
    zooms = [((0.1, 0.2, 0.5, 0.6), "original_image"), ((0.0, 0.0, 0.5, 0.5), "observation_1")]
    base = record(make_dataset(tmp_path / "dataset"), "images/scene0.jpg", zooms)
    trajectories = [replace(base, id=f"item{i}#0", item_id=f"item{i}") for i in range(n)]
    run = make_run(tmp_path, trajectories)
    (run / "attempts.jsonl").write_text("".join(json.dumps(t.to_dict()) + "\n" for t in trajectories))
    return run


def test_kill_9_of_a_build_ends_its_workers(tmp_path: Path) -> None:
    with _parent_killed(_build(tmp_path / "vp"), _images_written(tmp_path)) as workers:
        assert _survivors(workers) == []


@pytest.mark.parametrize("command", [["export-llamafactory", "--run"], ["view"]])
def test_kill_9_of_an_export_or_a_view_ends_its_workers(tmp_path: Path, command: list[str]) -> None:
    run = _big_run(tmp_path, 4000)
    with _parent_killed(_cli(*command, str(run), "--out", str(tmp_path / "out"))) as workers:
        assert _survivors(workers) == []


def test_workers_of_a_map_run_by_another_thread_end_with_their_parent() -> None:
    """The kernel's parent-death signal follows the thread that started a worker, so there it is not asked
    for; the workers see their parent end by themselves."""
    code = (
        "import threading, time\n"
        "from pipelines.parallel import ordered_map\n"
        "run = lambda: list(ordered_map(time.sleep, [0.1] * 1000, 2, start_method=None, name=str))\n"
        "thread = threading.Thread(target=run)\n"
        "thread.start()\n"
        "thread.join()\n"
    )
    with _parent_killed([sys.executable, "-c", code]) as workers:
        assert _survivors(workers) == []


def test_a_killed_build_leaves_no_temp_dir_after_the_rerun(tmp_path: Path) -> None:
    out = tmp_path / "vp"
    # scenes that take a worker a while, so that a worker left alive would still be writing after the rerun
    with _parent_killed(_build(out, "3072:4096")):
        rerun = ["build-visualprobe", "--out", str(out), "--train", "2", "--test", "0", "--workers", "1"]
        res = CliRunner().invoke(app, [*rerun, "--long-side", "512:768"])
        assert res.exit_code == 0, res.output
        time.sleep(2)  # a worker of the killed build that lived on would go on writing into its temp dir
        assert sorted(p.name for p in tmp_path.iterdir()) == ["vp"]


def test_the_rerun_removes_what_a_build_killed_while_replacing_its_output_left(tmp_path: Path) -> None:
    """Killed between its renames, an --overwrite build left the old output aside and the new one unmoved."""
    for left in (".ds.old-4242", ".ds.tmp-4242-abc123"):
        (tmp_path / left).mkdir()
        (tmp_path / left / "train.parquet").write_bytes(b"x")
    with atomic_dir(tmp_path / "ds") as tmp:
        (tmp / "y").write_text("y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_a_worker_killed_mid_build_is_one_line_naming_its_item(tmp_path: Path) -> None:
    out = tmp_path / "vp"
    # scenes large enough that a worker spends almost all its time inside a task, not between two
    proc = subprocess.Popen(_build(out, long_side="2048:3072"), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        found = _workers(proc, 2, _images_written(tmp_path))
        workers = [p for p in found if "spawn_main" in _proc(p, "cmdline")]
        while not (busy := [p for p in workers if _running(p)]):  # on a CPU, not waiting on the task queue
            time.sleep(0.01)
        time.sleep(0.05)  # well inside its task: R for a moment may be the hand-over to the next one
        busy = [p for p in busy if _running(p)] or busy
        os.kill(busy[0], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2 and "Traceback" not in stderr, stderr
    assert re.fullmatch(
        r"error: a worker process died while working on synthetic-train-\d{6} \(killed by SIGKILL; if memory "
        r"ran out, rerun with fewer --workers\)\n", stderr
    ), stderr  # fmt: skip
    assert not out.exists()


def _dies_on_7(n: int) -> int:
    if n == 6:
        time.sleep(0.5)  # the earliest task in flight is not the one whose worker died
    if n == 7:
        os._exit(3)
    return n


def test_a_dead_worker_names_the_task_it_ran() -> None:
    with pytest.raises(WorkerDiedError) as died:
        list(ordered_map(_dies_on_7, range(20), 2, start_method=None, name=lambda n: f"item {n}"))
    assert str(died.value) == "a worker process died while working on item 7 (exit code 3)"
