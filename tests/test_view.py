"""`minio3 view`: sites for runs, datasets, exports and evals; the filter language; bad input.

The browser tests (test_view_browser.py) check what a person sees; these check what the site holds.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner
from view_fixtures import attempts, image_sources, page_of, scripted_run

from cli import app
from minio3_data.errors import BadInputError
from minio3_data.images import OriginalCache
from minio3_data.records import read_items
from minio3_data.teacher_options import TeacherOptions
from minio3_data.zoom import ZoomEnv
from pipelines.build_visualprobe.difficulty import view_px
from pipelines.export_llamafactory import export_run
from pipelines.export_llamafactory.source_run import run_protocol
from pipelines.view import build_site
from pipelines.view.filters import Field, matches, parse_filter
from pipelines.view.run_source import RUN_FIELDS

FIELDS = (
    Field("status", "status"),
    Field("pattern", "patterns", multi=True),
    Field("turns", "turns", numeric=True),
)


@pytest.fixture(scope="module")
def run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scripted_run(tiny_dataset, tmp_path_factory.mktemp("view") / "run")


@pytest.fixture(scope="module")
def site(run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("view") / "site"
    build_site(run, out, workers=2, progress=False)
    return out


def test_a_run_gets_a_page_per_attempt_with_every_picture_in_the_site(run: Path, site: Path) -> None:
    trajs = attempts(run)
    record = json.loads((site / "site.json").read_text())
    assert (record["kind"], record["entries"], record["pages"], record["missing"]) == (
        "run",
        len(trajs),
        len(trajs),
        [],
    )
    index = (site / "index.html").read_text()
    for t in trajs:
        page = page_of(site, t.id)
        assert page.is_file() and f'href="pages/{page.name}"' in index
        html = page.read_text()
        for src in image_sources(html):
            assert (page.parent / src).resolve().is_file(), src
            assert (page.parent / src).resolve().is_relative_to(site.resolve())  # never outside the site
        assert t.ground_truth in html and t.verdict.label in html and t.teacher in html
        assert all(e in html for e in t.exemplar_ids)
    for html in [index] + [p.read_text() for p in (site / "pages").iterdir()]:
        assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched: the site works offline


def test_observations_are_the_exact_pixels_zoomenv_gives_the_model(
    run: Path, site: Path, tiny_dataset: Path
) -> None:
    t = max(attempts(run), key=lambda t: sum(turn.observation is not None for turn in t.turns))
    html = page_of(site, t.id).read_text()
    by_index = {int(k): src for src, k in re.findall(r'<img src="([^"]+)" alt="observation (\d+)"', html)}
    env = ZoomEnv(tiny_dataset / t.image, cache=OriginalCache(), protocol=run_protocol(run))
    observations = env.replay(t.turns)
    assert sorted(by_index) == list(range(len(observations))) and len(observations) >= 3
    for obs in observations:
        assert (page_of(site, t.id).parent / by_index[obs.index]).read_bytes() == obs.jpeg()


def test_filter_and_limit_choose_the_pages(run: Path, tmp_path: Path) -> None:
    trajs = attempts(run)
    wrong = [t for t in trajs if t.verdict.label == "wrong"]
    assert wrong and len(wrong) < len(trajs)
    summary = build_site(run, tmp_path / "wrong", filter_expr="verdict=wrong", workers=1, progress=False)
    assert summary.pages == len(wrong)
    assert sorted(p.name for p in (tmp_path / "wrong/pages").iterdir()) == sorted(
        page_of(tmp_path, t.id).name for t in wrong
    )
    limited = build_site(run, tmp_path / "three", limit=3, workers=1, progress=False)
    assert limited.pages == 3 == len(list((tmp_path / "three/pages").iterdir()))


def test_the_filter_language() -> None:
    row = {"status": "answered", "pattern": ["depth_first", "backtrack"], "turns": 4}
    assert matches(row, parse_filter("status=answered,turns>=4", FIELDS))
    assert matches(row, parse_filter(" status = failed|answered , pattern=backtrack ", FIELDS))
    assert not matches(row, parse_filter("pattern!=backtrack|direct", FIELDS))
    assert matches(row, parse_filter("pattern!=direct,turns<5,turns>3,turns=4", FIELDS))
    assert not matches(row, parse_filter("turns>4", FIELDS))
    assert parse_filter("", FIELDS) == [] and parse_filter(None, FIELDS) == []
    for bad, says in [
        ("colour=red", "no field 'colour'"),
        ("status>1", "compares numbers"),
        ("turns>=a", "takes one number"),
        ("status=", "give a value"),
        ("status", "write FIELD=VALUE"),
        ("turns>=1|2", "takes one number"),
        ("__import__('os')=1", "write FIELD=VALUE"),
    ]:
        with pytest.raises(BadInputError, match=re.escape(says)):
            parse_filter(bad, FIELDS)


def test_run_fields_cover_what_the_index_filters_on() -> None:
    assert {"status", "verdict", "pattern", "difficulty", "source", "turns"} <= {f.name for f in RUN_FIELDS}


def test_missing_images_leave_the_other_pages_and_are_listed(
    run: Path, tiny_dataset: Path, tmp_path: Path
) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(tiny_dataset, dataset)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    record = json.loads((copy / "run.json").read_text())
    record["dataset"] = record["identity"]["dataset"] = str(dataset)
    (copy / "run.json").write_text(json.dumps(record))
    trajs = attempts(run)
    gone = trajs[0].image
    (dataset / gone).unlink()
    lost = [t.id for t in trajs if t.image == gone]
    result = CliRunner().invoke(app, ["view", str(copy), "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    summary = [line for line in result.output.splitlines() if line.startswith("no page for")]
    assert len(summary) == 1 and f"no page for {len(lost)}" in summary[0] and "image not found" in summary[0]
    record = json.loads((tmp_path / "site/site.json").read_text())
    assert sorted(m["id"] for m in record["missing"]) == sorted(lost)
    assert record["pages"] == len(trajs) - len(lost)
    index = (tmp_path / "site/index.html").read_text()
    assert all(f"<li><b>{i}</b>" in index for i in lost)


def test_a_dir_of_no_known_kind_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "stuff").mkdir()
    result = CliRunner().invoke(app, ["view", str(tmp_path / "stuff"), "--out", str(tmp_path / "site")])
    assert result.exit_code == 2 and "not a run, dataset, eval or export dir" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "site").exists()
    bad = CliRunner().invoke(
        app, ["view", str(tmp_path / "stuff"), "--out", str(tmp_path / "s"), "--filter", "x=1"]
    )
    assert bad.exit_code == 2


def test_a_dataset_site_shows_each_item_with_its_first_glance_size(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    summary = build_site(tiny_dataset, tmp_path / "site", workers=1, progress=False)
    items = read_items(tiny_dataset / "train.parquet") + read_items(tiny_dataset / "test.parquet")
    assert (summary.kind, summary.pages) == ("dataset", len(items))
    item = items[0]
    html = page_of(tmp_path / "site", f"train/{item.id}").read_text()
    glance = round(view_px([tuple(item.target_bbox)], item.width, item.height), 1)
    assert f"{glance:g} px" in html and item.difficulty in html and item.question in html
    hard = build_site(
        tiny_dataset, tmp_path / "hard", filter_expr="difficulty=hard", workers=1, progress=False
    )
    assert hard.pages == sum(it.difficulty == "hard" for it in items)


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_an_export_site_shows_the_exported_images_byte_for_byte(run: Path, tmp_path: Path, fmt: str) -> None:
    export = tmp_path / "sft"
    exported = export_run(run, export, fmt=fmt, workers=1, progress=False)
    site = tmp_path / "site"
    summary = build_site(export, site, workers=1, progress=False)
    assert (summary.kind, summary.pages, summary.missing) == ("export", exported.rows_written, [])
    if fmt == "json":
        row = json.loads((export / "minio3_coldstart.json").read_text())[0]
        stored = [(export / p).read_bytes() for p in row["images"]]
    else:
        row = pq.read_table(export / "minio3_coldstart.parquet").slice(0, 1).to_pylist()[0]
        stored = [image["bytes"] for image in row["images"]]
    html = page_of(site, row["id"]).read_text()
    shown = [s for s in image_sources(html) if "/export/" in s]
    assert [(page_of(site, row["id"]).parent / s).read_bytes() for s in shown] == stored
    assert "box 1" in html  # the zooms read back and drawn


def test_an_eval_site_heads_its_trajectories_with_the_budget_table_and_plot(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    from pipelines.eval import evaluate
    from pipelines.eval.config import eval_config

    out = tmp_path / "eval"
    evaluate(eval_config(tiny_dataset, out, budgets=[2, 8], k=2, teacher="scripted", progress=False,
                         client=TeacherOptions()))  # fmt: skip
    summary = build_site(out, tmp_path / "site", workers=1, progress=False)
    assert (summary.kind, summary.pages) == ("eval", len(attempts(out))) and summary.pages > 0
    index = (tmp_path / "site/index.html").read_text()
    table = next(line for line in (out / "results.md").read_text().splitlines() if line.startswith("| all |"))
    cells = "".join(f"<td>{c.strip()}</td>" for c in table.strip("|").split("|"))
    assert cells in index  # the budget table as eval wrote it
    plots = sorted(p.name for p in out.glob("*.png"))
    assert plots and all(f'src="img/eval/{name}"' in index for name in plots)


def test_a_run_from_before_protocol_profiles_is_viewed_as_minio3(run: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(run, old)
    record = json.loads((old / "run.json").read_text())
    del record["identity"]["protocol"]
    (old / "run.json").write_text(json.dumps(record))
    build_site(old, tmp_path / "site", limit=1, workers=1, progress=False)
    assert "<th>protocol</th><td>minio3</td>" in next((tmp_path / "site/pages").iterdir()).read_text()


def test_worker_tasks_keep_the_samples_of_one_original_together() -> None:
    """Decoding an original costs more than a page: its entries go to one worker, in tasks of about 8."""
    from pipelines.view.entries import Chunked, Entry

    entries = [Entry(str(i), {}, i, f"question{i // 5}") for i in range(23)]
    tasks = list(Chunked(entries))
    assert [e.id for task in tasks for e in task] == [e.id for e in entries]  # order kept
    owners: dict[str, set[int]] = {}
    for i, task in enumerate(tasks):
        for e in task:
            owners.setdefault(e.group, set()).add(i)
    assert all(len(tasks_of) == 1 for tasks_of in owners.values())  # no question split across tasks
    assert [len(t) for t in Chunked([Entry(str(i), {}, i, "one") for i in range(70)])] == [64, 6]  # bounded
