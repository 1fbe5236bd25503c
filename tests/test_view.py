"""`minio3 view`: sites for runs, datasets, exports and evals; the filter language; bad input.

The browser tests (test_view_browser.py) check what a person sees; these check what the site holds.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import peer_eval
import pyarrow.parquet as pq
import pytest
from PIL import Image
from loopback_teacher import RequestView
from peer_eval import KITE, question_of, turn_of
from test_profile_deepeyes import run as deepeyes_eval
from test_profile_qwen3_agent import call as qwen3_call
from typer.testing import CliRunner
from view_fixtures import (
    EVAL_OUTCOMES,
    attempts,
    image_sources,
    index_table,
    page_of,
    planned_eval_site,
    scripted_run,
    text_of,
)

from cli import app
from minio3_data.errors import BadInputError
from minio3_data.images import OriginalCache
from minio3_data.records import read_items
from minio3_data.teacher_options import TeacherOptions
from minio3_data.zoom import ZoomEnv
from pipelines.build_visualprobe.difficulty import view_px
from pipelines.export_llamafactory import export_run
from pipelines.export_llamafactory.source_run import run_protocol
from pipelines.view import build_site, open_source
from pipelines.view.eval_source import EVAL_FIELDS
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


def test_an_ablated_evals_pages_show_the_crops_the_model_was_sent(tiny_dataset: Path, tmp_path: Path) -> None:
    """Under --ablate crop-black the model got black crops: the page shows those (same size, every pixel 0),
    says so in their caption and the header; the first view is the real one."""
    out, site = tmp_path / "blind", tmp_path / "site"
    res = CliRunner().invoke(app, ["eval", "--dataset", str(tiny_dataset), "--out", str(out), "--k", "1",
                                   "--max-turns", "4", "--ablate", "crop-black"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert CliRunner().invoke(app, ["view", str(out), "--out", str(site)]).exit_code == 0
    assert "crop-black: the crops are shown as the model was sent them" in text_of((site / "index.html").read_text())
    zoomed = [t for t in attempts(out) if any(turn.observation is not None for turn in t.turns)]
    assert zoomed
    for t in zoomed:
        page = page_of(site, t.id)
        html = page.read_text()
        by_index = {int(k): src for src, k in re.findall(r'<img src="([^"]+)" alt="observation (\d+)"', html)}
        env = ZoomEnv(tiny_dataset / t.image, cache=OriginalCache(), protocol=run_protocol(out))
        observations = env.replay(t.turns)
        assert (page.parent / by_index[0]).read_bytes() == observations[0].jpeg()
        for obs in observations[1:]:
            with Image.open(page.parent / by_index[obs.index]) as shown:
                assert shown.size == obs.size and shown.convert("L").getextrema() == (0, 0)
        assert html.count("sent crop-black (--ablate)") == len(observations) - 1


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


def test_a_dataset_site_sizes_each_item_by_its_smallest_target_as_the_difficulty_rule_does(
    tiny_dataset: Path, tmp_path: Path
) -> None:
    summary = build_site(tiny_dataset, tmp_path / "site", workers=1, progress=False)
    splits = {split: read_items(tiny_dataset / f"{split}.parquet") for split in ("train", "test")}
    items = [(split, item) for split, rows in splits.items() for item in rows]
    assert (summary.kind, summary.pages) == ("dataset", len(items))
    counted = 0
    for split, item in items:
        html = page_of(tmp_path / "site", f"{split}/{item.id}").read_text()
        glance = round(view_px(item.target_boxes, item.width, item.height), 1)
        assert f"{glance:g} px" in html and item.difficulty in html and item.question in html
        points = int(re.search(r"size points (\d)", html).group(1))
        assert item.difficulty != "hard" or points >= 1  # hard is 3-4 points, at most 2 from look-alikes
        union = round(view_px([item.target_bbox], item.width, item.height), 1)
        counted += item.kind == "count" and union > glance
    assert counted  # a count question whose union of targets looks bigger than its smallest target
    hard = build_site(
        tiny_dataset, tmp_path / "hard", filter_expr="difficulty=hard", workers=1, progress=False
    )
    assert hard.pages == sum(it.difficulty == "hard" for _, it in items)


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


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real eval (k = 5 at budgets 1, 2, 4 against a loopback policy playing a script) and its site."""
    return planned_eval_site(tmp_path_factory.mktemp("eval"))


def _planned(t) -> tuple[str | None, int]:
    return t.final_answer, t.num_turns


def test_an_eval_shows_each_trajectorys_outcome_at_every_budget_on_its_page_and_in_the_index(
    evaluated: tuple[Path, Path],
) -> None:
    out, site = evaluated
    trajs = attempts(out)
    assert len(trajs) == len(EVAL_OUTCOMES) and {_planned(t) for t in trajs} == set(EVAL_OUTCOMES)
    rows = index_table(site)
    for t in trajs:
        wanted = EVAL_OUTCOMES[_planned(t)]
        assert f"<th>outcome by budget</th><td>{wanted}</td>" in page_of(site, t.id).read_text()
        assert rows[t.id]["outcome by budget"] == wanted


@pytest.mark.parametrize(
    ("expr", "wanted"),
    [
        ("outcome=over-turn at 1-2; correct at 4", {("red", 3)}),
        ("at=2:over-turn,at=4:correct", {("red", 3)}),  # right once it had more turns
        ("at=1:over-turn", {("red", 3), ("blue", 2), (None, 4)}),
        ("at=4:correct|4:wrong", {("red", 1), ("red", 3), ("blue", 2)}),
        ("outcome=void at every budget|over-turn at every budget", {(None, 1), (None, 4)}),
    ],
)
def test_the_outcome_at_a_budget_is_a_filter_field(
    evaluated: tuple[Path, Path], expr: str, wanted: set[tuple[str | None, int]]
) -> None:
    out, _ = evaluated
    by_id = {t.id: t for t in attempts(out)}
    clauses = parse_filter(expr, EVAL_FIELDS)
    chosen = {_planned(by_id[e.id]) for e in open_source(out).entries() if matches(e.values, clauses)}
    assert chosen == wanted


def test_view_filter_builds_the_pages_of_the_trajectories_more_turns_made_right(
    evaluated: tuple[Path, Path], tmp_path: Path
) -> None:
    out, _ = evaluated
    result = CliRunner().invoke(
        app, ["view", str(out), "--out", str(tmp_path / "site"), "--filter", "at=2:over-turn,at=4:correct"]
    )
    assert result.exit_code == 0, result.output
    fixed = [t for t in attempts(out) if _planned(t) == ("red", 3)]
    assert [p.name for p in (tmp_path / "site/pages").iterdir()] == [page_of(tmp_path, fixed[0].id).name]


def test_the_verdict_stands_next_to_the_final_answer(evaluated: tuple[Path, Path]) -> None:
    out, site = evaluated
    for t in attempts(out):
        html = page_of(site, t.id).read_text()
        answer = t.final_answer if t.final_answer is not None else "(none)"
        row = text_of(re.search(r"<th>final answer</th><td>(.*?)</td>", html).group(1))
        assert row.startswith(f"{answer} \u2192 {t.verdict.label} (")
        if t.final_answer is not None:  # and under the turn that gave it
            note = re.search(r'<span class="note">final answer: (.*?)</span></div>', html).group(1)
            assert text_of(note).startswith(f"{answer} \u2192 {t.verdict.label}")


def test_answer_and_ground_truth_are_index_columns_and_kept_only_a_runs(
    evaluated: tuple[Path, Path], run: Path, site: Path
) -> None:
    out, eval_site = evaluated
    for source, built in ((out, eval_site), (run, site)):
        rows = index_table(built)
        for t in attempts(source):
            row = rows[t.id]
            assert (row["answer"], row["ground truth"]) == (t.final_answer or "", t.ground_truth)
    assert all("kept" not in row for row in index_table(eval_site).values())
    assert all(row["kept"] in ("yes", "no") for row in index_table(site).values())
    assert "<th>kept</th>" in page_of(site, attempts(run)[0].id).read_text()
    assert all("<th>kept</th>" not in page_of(eval_site, t.id).read_text() for t in attempts(out))
    with pytest.raises(BadInputError, match="no field 'kept'"):
        build_site(out, eval_site.parent / "kept", filter_expr="kept=no", progress=False)


def test_every_observation_links_to_its_whole_picture(evaluated: tuple[Path, Path]) -> None:
    out, site = evaluated
    for t in attempts(out):
        html = page_of(site, t.id).read_text()
        shown = re.findall(r'<img src="([^"]+)" alt="observation \d+">', html)
        linked = re.findall(r'<a href="([^"]+)" target="_blank"><img src="\1" alt="observation \d+">', html)
        assert shown and linked == shown


def test_an_eval_whose_results_lost_their_budgets_is_one_line(
    evaluated: tuple[Path, Path], tmp_path: Path
) -> None:
    out, _ = evaluated
    copy = tmp_path / "eval"
    shutil.copytree(out, copy)
    record = json.loads((copy / "results.json").read_text())
    (copy / "results.json").write_text(json.dumps(record | {"budgets": ["four"]}))
    result = CliRunner().invoke(app, ["view", str(copy), "--out", str(tmp_path / "site")])
    assert result.exit_code == 2 and "results.json: unreadable or without its budgets" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "site").exists()


Drawn = tuple[str, float, float, float, float]  # a box's label, then left, top, width, height as fractions


def drawn_boxes(site: Path, entry_id: str) -> dict[str, list[Drawn]]:
    """The boxes a trajectory's page lays over each picture (by its alt text), read back from the markup."""
    page = page_of(site, entry_id).read_text()
    number = r"calc\(([\d.]+)% [-+] 0px\)"
    box = re.compile(rf'<div class="box" style="left:{number};top:{number};width:{number};height:{number};'
                     r'border-color:#\w+"><span[^>]*>(\d+)</span></div>')  # fmt: skip
    return {
        alt: [(m[4], *(float(v) / 100 for v in m[:4])) for m in box.findall(boxes)]
        for alt, boxes in re.findall(r'<img[^>]* alt="([^"]*)"></a>(.*?)</div><figcaption>', page)
    }


def viewed(out: Path, site: Path) -> Path:
    """`minio3 view OUT --out SITE`."""
    result = CliRunner().invoke(app, ["view", str(out), "--out", str(site)])
    assert result.exit_code == 0, result.output
    return site


def close(got: list[Drawn], want: list[Drawn]) -> bool:
    """The same boxes in the same order, up to the markup's four decimals of a percent."""
    return len(got) == len(want) and all(
        g[0] == w[0] and g[1:] == pytest.approx(w[1:], abs=1e-6) for g, w in zip(got, want)
    )


def kite_policy(turns: list[str], other: str) -> Callable[[RequestView], str]:
    """Plays `turns` on peer_eval's kite question and answers `other` to the rest at once."""
    return lambda view: turns[turn_of(view)] if KITE in question_of(view) else other


def test_a_deepeyes_eval_draws_each_zoom_where_the_release_cut_it(tmp_path: Path) -> None:
    deepeyes_eval(tmp_path)
    boxes = drawn_boxes(viewed(tmp_path / "run", tmp_path / "site"), "zoom#0")
    # [1000, 500, 1100.4, 530] in pixels of the 3000x2000 original, Pillow-rounded: (1000, 500, 1100, 530)
    want = [("1", 1000 / 3000, 500 / 2000, 100 / 3000, 30 / 2000)]
    assert close(boxes["the search on the original"], want) and close(boxes["observation 0"], want)


def test_a_qwen3_agent_eval_draws_boxes_on_the_original_and_nested_ones_in_their_crop(tmp_path: Path) -> None:
    turns = [qwen3_call([200, 250, 700, 750], 0), qwen3_call([0, 0, 500, 500], 1), "red"]
    data = peer_eval.dataset(tmp_path / "data", (1000, 800))
    peer_eval.run("qwen3-agent", kite_policy(turns, "dog"), data, tmp_path / "run", "3")
    boxes = drawn_boxes(viewed(tmp_path / "run", tmp_path / "site"), "kite#0")
    # turn 1: k/1000 of 1000x800 -> (200, 200, 700, 600); turn 2: [0, 0, 500, 500] of that 500x400 crop ->
    # (0, 0, 250, 200) there, (200, 200, 450, 400) on the original
    first, nested = ("1", 0.2, 0.25, 0.5, 0.5), ("2", 0.2, 0.25, 0.25, 0.25)
    assert close(boxes["the search on the original"], [first, nested])
    assert close(boxes["observation 0"], [first]) and close(boxes["observation 1"], [("2", 0, 0, 0.5, 0.5)])


def test_a_chain_of_focus_eval_draws_first_view_boxes_on_the_original(tmp_path: Path) -> None:
    zoom = '<tool_call>{"name":"image_zoom_in_tool","arguments":{"bbox_2d":[28, 14, 84, 56]}}</tool_call>'
    turns = [zoom, "<answer>red</answer>"]
    data = peer_eval.dataset(tmp_path / "data", (100, 50))
    peer_eval.run("chain-of-focus", kite_policy(turns, "<answer>dog</answer>"), data, tmp_path / "run", "2")
    boxes = drawn_boxes(viewed(tmp_path / "run", tmp_path / "site"), "kite#0")
    # first view of 100x50: smart_resize(28, 112^2, 3840^2): 56x112 = 6,272 < 12,544, beta = sqrt(12544/5000):
    # ceil(50*1.5839/28)*28 = 84, ceil(100*1.5839/28)*28 = 168 -> 168x84. The box on it x1.5 about (56, 35):
    # [14, 3.5, 98, 66.5], int() -> (14, 3, 98, 66): on the original the same fractions of the first view
    want = [("1", 14 / 168, 3 / 84, 84 / 168, 63 / 84)]
    assert close(boxes["the search on the original"], want) and close(boxes["observation 0"], want)
