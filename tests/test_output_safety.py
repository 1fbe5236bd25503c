"""Output dirs are safe: never an input, never a stranger's folder, one writer at a time, and every
filesystem problem is one line, before any work where it can be known up front."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from export_fixtures import make_dataset, make_run, released_row, standard_trajectories, write_released
from loopback_teacher import LoopbackTeacher
from typer.testing import CliRunner

from cli import app
from minio3_data.errors import BadInputError
from minio3_data.exemplars import shipped_dir
from minio3_data.outputs import OutputBusyError, claim_output, lock_path
from minio3_data.records import read_items
from pipelines.synth_coldstart import SynthConfig, synth_coldstart

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def _cfg(dataset: Path, out: Path, **kw) -> SynthConfig:
    """One sample of one item with the scripted teacher, unless `kw` says otherwise."""
    small = {"target": None, "samples_per_item": 1, "limit": 1, "progress": False}
    return SynthConfig(dataset=dataset, out=out, **{**small, **kw})


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _refused(args: list[str], *named: Path | str) -> None:
    """The command exits 2 with one line naming every path (or option) in `named`, and no traceback."""
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    line = res.output.strip()
    assert "\n" not in line and "Traceback" not in line and "may never be, contain or sit inside" in line, line
    for path in named:
        assert str(path) in line, (path, line)


# --- 3: an output may never be, contain or sit inside an input ----------------------------------------------


def test_export_into_its_own_run_dir_is_refused_and_the_run_kept(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    before = _tree(run)
    _refused(["export-llamafactory", "--run", str(run), "--out", str(run), "--overwrite"], run)
    _refused(["export-llamafactory", "--run", str(run), "--out", str(run / "sft"), "--overwrite"], run)
    dataset = tmp_path / "dataset"  # the run's dataset is an input too
    _refused(["export-llamafactory", "--run", str(run), "--out", str(dataset), "--overwrite"], dataset)
    assert _tree(run) == before


def test_build_over_its_source_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "release"
    (src / "VisualProbe_train").mkdir(parents=True)
    (src / "VisualProbe_train" / "train.json").write_text("[]")
    before = _tree(src)
    build = ["build-visualprobe", "--overwrite", "--source"]
    _refused([*build, "official", "--from", str(src), "--out", str(src)], src)
    coco = [*build, "coco", "--images", str(src), "--annotations", str(tmp_path / "a.json")]
    _refused([*coco, "--out", str(tmp_path)], src)  # an output that contains an input
    link = tmp_path / "link"
    link.symlink_to(src)
    _refused([*build, "official", "--from", str(src), "--out", str(link)], src)
    assert _tree(src) == before


def test_merge_into_one_of_its_runs_is_refused(tiny_dataset: Path, tmp_path: Path) -> None:
    runs = [tmp_path / "a", tmp_path / "b"]
    for i, run in enumerate(runs):
        synth_coldstart(_cfg(tiny_dataset, run, limit=2, shard=(i, 2)))
    before = _tree(runs[0])
    _refused(["merge-runs", str(runs[0]), str(runs[1]), "--out", str(runs[0]), "--overwrite"], runs[0])
    assert _tree(runs[0]) == before


# --- 3, through records: a dir an input's records name is an input too -------------------------------------
# Each case: a command, the dir it reads through another dir's records (or is given), and the option that led
# there. --out (or train-sft's output_dir=) is pointed at that dir, inside it and at its parent, directly and
# through a symlink, with and without --overwrite where the command has it: refused in one line naming the
# option and the dir, which is left byte for byte as it was.

SYNTH = ["--limit", "2", "--samples-per-item", "1", "--target", "1000"]
EVAL = ["--k", "1", "--max-turns", "4", "--limit", "1"]


@pytest.fixture(scope="module")
def world(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every kind of dir, each alone in its parent (so that --out at the parent contains only it): a dataset,
    two shards of one synthesis on it, an eval, an export of a shard and one whose rows name images outside
    it, the released parquet, a model dir and a copy of the shipped exemplars."""
    root = tmp_path_factory.mktemp("world")
    w = {name: root / name / "it" for name in ("dataset", "run", "run2", "eval", "export", "named", "pictures",
                                               "official", "model", "exemplars")}  # fmt: skip
    shutil.copytree(tiny_dataset, w["dataset"])
    shutil.copytree(shipped_dir(), w["exemplars"])
    made = [["eval", "--dataset", str(w["dataset"]), "--out", str(w["eval"]), *EVAL]]
    for k, run in enumerate((w["run"], w["run2"])):
        made.append(["synth-coldstart", "--dataset", str(w["dataset"]), "--out", str(run), "--shard", f"{k}/2",
                     *SYNTH])
    for args in made:
        assert runner.invoke(app, args).exit_code == 0, args
    export = ["export-llamafactory", "--run", str(w["run"]), "--out", str(w["export"]), "--workers", "1"]
    assert runner.invoke(app, export).exit_code == 0
    shutil.copytree(w["export"], w["named"])  # its rows name images in `pictures`, by absolute path
    data = w["named"] / "minio3_coldstart.json"
    rows = json.loads(data.read_text())
    w["pictures"].mkdir(parents=True)
    for row in rows:
        for k, rel in enumerate(row["images"]):
            row["images"][k] = str(shutil.copy(w["named"] / rel, w["pictures"]))
    data.write_text("[\n" + ",\n".join(map(json.dumps, rows)) + "\n]\n")  # one row a line, as exported
    shutil.rmtree(w["named"] / "images")
    released = make_dataset(root / "released")
    write_released(w["official"] / "data.parquet", [released_row(released, standard_trajectories(released)[0])])
    w["model"].mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "preprocessor_config.json"):
        (w["model"] / name).write_text("{}")
    return w


Command = Callable[[dict[str, Path], str], list[str]]  # (the dirs of `world`, --out) -> the command line
SFT = ["--model", "m", "--dry-run", "--"]
# id: (the dir it reads, the option that leads there, its argv, whether it has --overwrite)
CASES: dict[str, tuple[str, str, Command, bool]] = {
    "view run: its dataset": ("dataset", "SOURCE", lambda w, o: ["view", str(w["run"]), "--out", o], True),
    "view eval: its dataset": ("dataset", "SOURCE", lambda w, o: ["view", str(w["eval"]), "--out", o], True),
    "view export: its images": ("pictures", "SOURCE", lambda w, o: ["view", str(w["named"]), "--out", o], True),
    "view dataset": ("dataset", "SOURCE", lambda w, o: ["view", str(w["dataset"]), "--out", o], True),
    "export run: its dataset": (
        "dataset", "--run", lambda w, o: ["export-llamafactory", "--run", str(w["run"]), "--out", o], True,
    ),
    "export official": (
        "official", "--official",
        lambda w, o: ["export-llamafactory", "--official", str(w["official"]), "--out", o], True,
    ),
    "merge runs: their dataset": (
        "dataset", "RUNS", lambda w, o: ["merge-runs", str(w["run"]), str(w["run2"]), "--out", o], True,
    ),
    "synth: its exemplars": (
        "exemplars", "--exemplars",
        lambda w, o: ["synth-coldstart", "--dataset", str(w["dataset"]), "--exemplars", str(w["exemplars"]),
                      "--out", o, *SYNTH],
        False,
    ),
    "quickstart: the shipped exemplars": (
        "exemplars", "(the shipped exemplars)",
        lambda w, o: ["quickstart", "--out", o, "--train", "2", "--test", "1", "--samples-per-item", "1"], True,
    ),
    "train-rl: its dataset": (
        "dataset", "--dataset",
        lambda w, o: ["train-rl", "--dataset", str(w["dataset"]), "--model", str(w["model"]), "--out", o,
                      "--dry-run"],
        False,
    ),
    "train-sft: the export": (
        "export", "--export", lambda w, o: ["train-sft", "--export", str(w["export"]), *SFT, f"output_dir={o}"],
        False,
    ),
    "train-sft: the export's images": (
        "pictures", "--export", lambda w, o: ["train-sft", "--export", str(w["named"]), *SFT, f"output_dir={o}"],
        False,
    ),
}  # fmt: skip
PLACES = ("is", "inside", "contains")


def _out(target: Path, place: str, link: Path | None) -> Path:
    """--out at `target`, inside it or at its parent; through `link` (made here) when given."""
    at = target.parent if place == "contains" else target
    if link is not None:
        link.symlink_to(at)
        at = link
    return at / "site" if place == "inside" else at


def _refused_and_kept(args: list[str], target: Path, option: str) -> None:
    before = _tree(target)
    _refused(args, target, option)
    assert _tree(target) == before


@pytest.mark.parametrize("linked", [False, True], ids=["direct", "symlink"])
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize(
    "case, overwrite",
    [(case, overwrite) for case, (*_, has) in CASES.items() for overwrite in (False, True)[: 1 + has]],
    ids=lambda v: {True: "overwrite", False: "keep"}.get(v, v),
)
def test_an_output_over_a_dir_a_command_reads_is_refused(
    world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, overwrite: bool,
    place: str, linked: bool,
) -> None:
    target_name, option, argv, _ = CASES[case]
    for module in ("minio3_data.exemplars", "pipelines.sampling.run_dir", "pipelines.quickstart"):
        # a copy stands for the shipped exemplars, so that no check, passing or not, can touch the real ones
        monkeypatch.setattr(f"{module}.shipped_dir", lambda: world["exemplars"], raising=False)
    target = world[target_name]
    out = _out(target, place, tmp_path / "link" if linked else None)
    _refused_and_kept([*argv(world, str(out)), *(["--overwrite"] if overwrite else [])], target, option)


@pytest.mark.parametrize("linked", [False, True], ids=["direct", "symlink"])
@pytest.mark.parametrize("place", PLACES)
@pytest.mark.parametrize("command", ["synth-coldstart", "eval"])
def test_a_resumed_run_whose_record_names_a_dataset_around_it_is_refused(
    world: dict[str, Path], tmp_path: Path, command: str, place: str, linked: bool
) -> None:
    """A resume reads its run dir's run.json: the dataset it names may not be, contain or sit inside --out."""
    run = tmp_path / "runs" / "it"
    shutil.copytree(world["run" if command == "synth-coldstart" else "eval"], run)
    named = {"is": run, "inside": run.parent, "contains": run / "data"}[place]
    named.mkdir(exist_ok=True)
    if linked:
        (tmp_path / "link").symlink_to(named)
        named = tmp_path / "link"
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "dataset": str(named)}))
    as_made = {"synth-coldstart": [*SYNTH, "--shard", "0/2"], "eval": EVAL}[command]  # the options of `world`
    args = [command, "--dataset", str(world["dataset"]), "--out", str(run), *as_made]
    _refused_and_kept(args, named.resolve(), "--out")


# --- 4: synth-coldstart writes only into a new, empty or run dir --------------------------------------------


def test_synth_refuses_a_folder_that_is_not_a_run_dir(tiny_dataset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "stats.json").write_text('{"mine": true}')
    with pytest.raises(BadInputError, match="not a run dir"):
        synth_coldstart(_cfg(tiny_dataset, folder))
    assert _tree(folder) == {"stats.json": b'{"mine": true}'}

    run = tmp_path / "run"
    synth_coldstart(_cfg(tiny_dataset, run))
    (run / "run.json").unlink()  # attempts without the options they were made with: cannot be resumed safely
    with pytest.raises(BadInputError, match="attempts.jsonl but no run.json"):
        synth_coldstart(_cfg(tiny_dataset, run, seed=5))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert synth_coldstart(_cfg(tiny_dataset, empty)).attempts == 1


# --- 5: one writer per output dir ---------------------------------------------------------------------------


def test_a_lock_is_exclusive_names_its_holder_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with claim_output(out):
        assert lock_path(out).read_text().strip() == str(os.getpid())
        with pytest.raises(OutputBusyError, match=rf"{out}: .*pid {os.getpid()}"), claim_output(out):
            pass
    assert not lock_path(out).exists()


def test_two_synth_runs_on_one_dir_the_second_is_refused_and_kill_9_leaves_no_lock(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    with LoopbackTeacher(latency=1.0) as srv:
        cmd = [sys.executable, "-m", "cli", "synth-coldstart", "--dataset", str(tiny_dataset), "--out", str(run),
               "--teacher", "openai", "--model", "m", "--base-url", srv.openai_url, "--api-key-env", "NONE",
               "--limit", "2", "--samples-per-item", "1", "--concurrency", "1", "--target", "1000"]
        first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not (run / "run.json").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert first.poll() is None, "the first run ended before the second could start"
            started = time.monotonic()
            second = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert second.returncode == 2 and time.monotonic() - started < 30
            assert f"{run.resolve()}: another minio3 process (pid {first.pid}) is writing it" in second.stderr
            assert "Traceback" not in second.stderr
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        srv.latency = 0
        third = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stderr  # the kernel dropped the killed run's lock
    assert not lock_path(run.resolve()).exists()


# --- 11: filesystem problems are one line -------------------------------------------------------------------


def test_out_under_a_file_and_out_dot_are_refused_up_front(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "afile").write_text("x")
    res = runner.invoke(app, ["build-visualprobe", "--out", str(tmp_path / "afile" / "sub"), "--train", "1"])
    assert res.exit_code == 2 and "is under" in res.output and "which is a file" in res.output
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    for out in (".", "/", ".."):
        res = runner.invoke(app, ["build-visualprobe", "--out", out, "--overwrite", "--train", "4000"])
        assert res.exit_code == 2 and "current directory or one of its parents" in res.output, res.output
    assert time.monotonic() - started < 10  # refused before building anything
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_filesystem_errors_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.build_visualprobe as build

    def denied(root: Path, *args, **kw):
        raise PermissionError(errno.EACCES, "Permission denied", str(root / "images"))

    monkeypatch.setattr(build, "build_synthetic", denied)
    res = runner.invoke(app, ["build-visualprobe", "--out", str(tmp_path / "vp"), "--train", "1"])
    assert res.exit_code == 2 and "images: Permission denied" in res.output and "Traceback" not in res.output

    def full(*args, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a write names no file

    monkeypatch.setattr(build, "build_synthetic", full)
    res = runner.invoke(app, ["build-visualprobe", "--out", str(tmp_path / "vp"), "--train", "1"])
    assert res.exit_code == 2 and f"disk full writing {(tmp_path / 'vp').resolve()}; free space" in res.output
    assert not (tmp_path / "vp").exists()

    def bug(*args, **kw):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(build, "build_synthetic", bug)
    res = runner.invoke(app, ["build-visualprobe", "--out", str(tmp_path / "vp"), "--train", "1"])
    assert isinstance(res.exception, ZeroDivisionError)  # a bug keeps its traceback


def test_deeply_nested_annotations_are_one_line(tmp_path: Path) -> None:
    ann = tmp_path / "deep.json"
    ann.write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "images").mkdir()
    res = runner.invoke(app, ["build-visualprobe", "--source", "coco", "--images", str(tmp_path / "images"),
                              "--annotations", str(ann), "--out", str(tmp_path / "vp")])
    assert res.exit_code == 2 and f"{ann}: JSON nested too deeply" in res.output


def test_coco_images_are_named_by_content_never_by_file_name(tmp_path: Path) -> None:
    from test_build_coco import _draw, make_coco

    # resolves inside --images (data/coco/images), but images/<file_name> in the dataset would be tmp/coco/...
    tricky = "a/b/../../../../coco/images/p.jpg"
    images = tmp_path / "data" / "coco" / "images"
    _draw(images / "p.jpg", (2400, 1800), [(1, 60 + 150 * i, 1650, 30, 20) for i in range(5)])
    ann = make_coco(tmp_path / "data" / "coco", [{"file_name": tricky, "draw": False}])
    out = tmp_path / "vp"
    summary = build_visualprobe_coco(out, images, ann)
    items = read_items(out / "train.parquet")
    assert summary.skipped == [] and items and not (tmp_path / "coco").exists()
    assert sorted(p.relative_to(out).as_posix() for p in (out / "images").rglob("*")) == [items[0].image]
    again = build_visualprobe_coco(tmp_path / "vp2", images, ann)
    assert again.counts == summary.counts and _tree(tmp_path / "vp2") == _tree(out)  # same input, same bytes


def build_visualprobe_coco(out: Path, images: Path, ann: Path):
    from pipelines.build_visualprobe import build_visualprobe

    return build_visualprobe("coco", out, images=images, annotations=ann, train=5, test=0, workers=1)


def test_one_bad_row_never_aborts_an_export(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from export_fixtures import make_dataset, standard_trajectories

    dataset = make_dataset(tmp_path / "dataset")
    good = standard_trajectories(dataset)
    rows = [t.to_dict() for t in good]
    nul = dict(rows[0], id="nul#0", image="images/scene0\0.jpg")
    shapeless = dict(rows[1], id="shapeless#0", verdict=None)
    run = make_run(tmp_path, good)
    pq.write_table(pa.Table.from_pylist([*rows, nul, shapeless]), run / "trajectories.parquet")
    res = runner.invoke(app, ["export-llamafactory", "--run", str(run), "--out", str(tmp_path / "sft")])
    assert res.exit_code == 0, res.output
    lines = (tmp_path / "sft" / "excluded.jsonl").read_text().splitlines()
    excluded = {r["id"]: r for r in map(json.loads, lines)}
    assert excluded["nul#0"]["reason"] == "bad image" and "NUL byte" in excluded["nul#0"]["detail"]
    assert excluded["shapeless#0"]["reason"] == "bad record"
    assert "exported 4 of 6 rows" in res.output


def test_a_lone_surrogate_excludes_its_row_only(tmp_path: Path) -> None:
    from export_fixtures import make_dataset, released_row, standard_trajectories, write_released

    dataset = make_dataset(tmp_path / "dataset")
    released = [released_row(dataset, t, rollout=k) for k, t in enumerate(standard_trajectories(dataset))]
    turns = json.loads(released[0]["conversations"])
    turns[-1]["value"] += " @"  # then \\ud800 in the JSON: once read, a lone surrogate UTF-8 cannot write
    released[0]["conversations"] = json.dumps(turns).replace(" @", " \\ud800")
    src = write_released(tmp_path / "released.parquet", released)
    res = runner.invoke(app, ["export-llamafactory", "--official", str(src), "--out", str(tmp_path / "sft")])
    assert res.exit_code == 0, res.output
    assert "exported 3 of 4 rows" in res.output and "(bad text: 1)" in res.output
