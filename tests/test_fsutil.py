"""Atomic outputs: a killed build leaves nothing at --out and its leftovers are cleaned by the next run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from minio3_data.errors import BadInputError
from minio3_data.fsutil import atomic_dir, atomic_write_text, safe_relpath
from minio3_data.outputs import output_lock


def test_atomic_dir_renames_only_on_success(tmp_path):
    out = tmp_path / "ds"
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("killed")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with atomic_dir(out) as tmp:
        (tmp / "done.txt").write_text("x")
    assert (out / "done.txt").exists() and oct(out.stat().st_mode & 0o777) != "0o700"
    with pytest.raises(BadInputError, match="--overwrite"):
        with atomic_dir(out):
            pass


def _killed_build(out) -> None:
    code = (
        "import os; from minio3_data.fsutil import atomic_dir\n"
        f"with atomic_dir({str(out)!r}) as tmp:\n"
        "    (tmp / 'x').write_text('x'); os.kill(os.getpid(), 9)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=False)


def test_leftovers_of_a_killed_build_are_removed(tmp_path):
    out = tmp_path / "ds"
    _killed_build(out)
    assert not out.exists() and len(list(tmp_path.glob(".ds.tmp-*"))) == 1
    with atomic_dir(out) as tmp:
        (tmp / "y").write_text("y")
    assert list(tmp_path.glob(".ds.tmp-*")) == [] and (out / "y").exists()


def test_atomic_write_text_permissions(tmp_path):
    atomic_write_text(tmp_path / "a.json", "{}")
    assert (tmp_path / "a.json").stat().st_mode & 0o644 == 0o644


@pytest.mark.parametrize("rel", ["/etc/passwd", "../x.jpg", "a/../../x.jpg"])
def test_safe_relpath_refuses_escapes(tmp_path, rel):
    with pytest.raises(BadInputError):
        safe_relpath(tmp_path, rel)
    assert safe_relpath(tmp_path, "a/b.jpg") == (tmp_path / "a/b.jpg").resolve()
    assert os.path.isabs(safe_relpath(tmp_path, "x"))


def test_any_build_in_a_dir_removes_what_killed_builds_left_there(tmp_path):
    _killed_build(tmp_path / "other")  # killed: its lock died with it
    busy = tmp_path / ".busy.tmp-1-abc"  # a build still running (it holds its lock)
    busy.mkdir()
    assert len(list(tmp_path.glob(".other.tmp-*"))) == 1
    with output_lock(tmp_path / "busy"), atomic_dir(tmp_path / "ds") as tmp:
        (tmp / "y").write_text("y")
    assert list(tmp_path.glob(".other.tmp-*")) == [] and busy.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".busy.tmp-1-abc", "ds"]  # no lock file left behind
