"""The six shipped exemplars, the loader's one-line errors and `minio3 exemplars check`."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from cli import app
from minio3_data.errors import BadInputError
from minio3_data.exemplars import SEARCH_PATTERNS, load_exemplars, replay_exemplar, shipped_dir
from minio3_data.images import OriginalCache
from minio3_data.profiles import get_profile
from minio3_data.protocol import Answer, Zoom
from minio3_data.render import conversation
from pipelines.exemplars_check import check_exemplars

parse_turn = get_profile("minio3").parse_turn


@pytest.fixture(scope="module")
def shipped():
    return load_exemplars()


def test_six_exemplars_two_per_pattern(shipped) -> None:
    assert len(shipped) == 6
    assert Counter(ex.pattern for ex in shipped) == {p: 2 for p in SEARCH_PATTERNS}
    assert len({ex.id for ex in shipped}) == 6


def test_shipped_files_stay_small_and_modest(shipped) -> None:
    for ex in shipped:
        assert ex.image.suffix == ".jpg" and ex.image.stat().st_size < 1_000_000
        with Image.open(ex.image) as im:
            assert im.format == "JPEG" and 2000 <= max(im.size) <= 3000
        assert 3 <= len(ex.steps) <= 8


def test_thoughts_are_hand_written(shipped) -> None:
    thoughts = [step.thought for ex in shipped for step in ex.steps]
    assert len(set(thoughts)) == len(thoughts)
    assert all(len(t) > 150 for t in thoughts)
    openings = Counter(" ".join(t.split()[:4]) for t in thoughts)
    assert openings.most_common(1)[0][1] <= 2  # no template opening shared across turns


def test_patterns_show_in_the_actions(shipped) -> None:
    for ex in shipped:
        zooms = [s.action for s in ex.steps if isinstance(s.action, Zoom)]
        nested = any(z.source != "original_image" for z in zooms)
        returns = sum(z.source == "original_image" for z in zooms[1:])
        if ex.pattern == "depth_first":
            assert nested, ex.id
        if ex.pattern == "trial_and_error":
            assert returns >= 1, ex.id  # went back to the original after a wrong region


def test_replay_shows_the_target_last_and_answers_right(shipped) -> None:
    cache = OriginalCache()
    for ex in shipped:
        observations = replay_exemplar(ex, cache)
        assert len(observations) == 1 + sum(isinstance(s.action, Zoom) for s in ex.steps)
        x0, y0, x1, y1 = observations[-1].box
        tx0, ty0, tx1, ty1 = ex.target_bbox
        assert x0 <= tx0 and y0 <= ty0 and tx1 <= x1 and ty1 <= y1, ex.id
        assert [list(o.box) for o in observations[1:]] == [t.box_px for t in ex.turns if t.box_px]


def test_exemplar_renders_as_a_conversation(shipped) -> None:
    ex = shipped[0]
    chat = conversation(ex.question, ex.options, ex.turns)
    assert [t.role for t in chat][:3] == ["system", "user", "assistant"] and chat[-1].role == "assistant"
    assert [i for t in chat for i in t.images] == list(range(len(ex.steps)))
    actions = [parse_turn(t.text) for t in chat if t.role == "assistant"]
    assert actions == [s.action for s in ex.steps]
    assert isinstance(actions[-1], Answer)


def test_check_writes_a_page_for_the_shipped_set(tmp_path) -> None:
    out = tmp_path / "page.html"
    result = check_exemplars(out=out)
    assert result.problems == [] and result.exemplars == 6
    page = out.read_text()
    assert page.count("<section>") == 6 and "All 6 exemplars are valid" in page
    observations = sum(len(ex.steps) - 1 for ex in load_exemplars())
    assert page.count("data:image/jpeg;base64,") == 6 + observations


# --- a user's own set, and what the check says about it ---------------------------------------------------


def user_set(tmp_path: Path, name: str = "dfs-2") -> tuple[Path, dict]:
    """A copy of one shipped exemplar in its own dir, to break on purpose."""
    d = tmp_path / "mine"
    d.mkdir()
    shutil.copy(shipped_dir() / f"{name}.jpg", d / f"{name}.jpg")
    data = json.loads((shipped_dir() / f"{name}.json").read_text())
    return d, data


def write(d: Path, data: dict, name: str = "dfs-2") -> Path:
    path = d / f"{name}.json"
    path.write_text(json.dumps(data))
    return path


BREAKS = [
    (
        lambda d: d["turns"][1]["zoom"].update(bbox_2d=[0.6, 0.35, 0.3, 0.75]),
        "turns[1].zoom.bbox_2d",
        "x1 must be greater",
    ),
    (
        lambda d: d["turns"][0]["zoom"].update(source="observation_3"),
        "turns[0].zoom.source",
        "does not exist yet",
    ),
    (
        lambda d: d["turns"][2]["zoom"].update(bbox_2d=[0.0, 0.0, 0.2, 0.2]),
        "turns[2].zoom",
        "does not contain the target",
    ),
    (lambda d: d["turns"][3].update(answer="B"), "turns[3].answer", "not the correct answer"),
    (lambda d: d["turns"][0]["zoom"].update(bbox_2d=[float("nan"), 0, 1, 1]), "turns[0].zoom", "non-finite"),
    (lambda d: d["turns"][0]["zoom"].update(bbox_2d=[0.1, 0.2, 0.3]), "turns[0].zoom", "four numbers"),
    (lambda d: d["turns"][0].update(thought=""), "turns[0].thought", "missing or empty"),
    (lambda d: d["turns"][0].update(thought="look <grounding>"), "turns[0].thought", "plain prose"),
    (lambda d: d["turns"][1].update(answer="A"), "turns[1]", "exactly one action"),
    (
        lambda d: d["turns"].insert(1, {"thought": "sure", "answer": "A"}),
        "turns[1]",
        "answer must be the last turn",
    ),
    (lambda d: d["turns"].pop(), "turns[2]", "the last turn must answer"),
    (lambda d: d.update(pattern="breadth_first"), "pattern", "is not one of"),
    (lambda d: d.update(image="../escape.jpg"), "image", "escapes"),
    (lambda d: d.update(image="missing.jpg"), "image", "not found"),
    (lambda d: d.update(target_bbox=[10, 10, 5, 50]), "target_bbox", "not a box inside"),
    (lambda d: d.update(optoins=["a"]), "optoins", "unknown field"),
]


@pytest.mark.parametrize("breaks, where, what", BREAKS)
def test_check_names_file_field_and_problem(tmp_path, breaks, where, what) -> None:
    d, data = user_set(tmp_path)
    breaks(data)
    path = write(d, data)
    result = check_exemplars(d)
    assert len(result.problems) >= 1
    assert any(p.startswith(f"{path}: {where}") and what in p for p in result.problems), result.problems
    assert (d / "check.html").is_file() and "problem(s)" in (d / "check.html").read_text()
    with pytest.raises(BadInputError, match=re.escape(str(path))):
        load_exemplars(d)


def test_invalid_json_and_duplicate_ids(tmp_path) -> None:
    d, data = user_set(tmp_path)
    write(d, data)
    write(d, data, name="copy")
    (d / "broken.json").write_text('{"id": "x",')
    result = check_exemplars(d)
    assert any(p.startswith(f"{d / 'broken.json'}: not valid JSON") for p in result.problems)
    assert any("is also the id of" in p for p in result.problems)


def test_cli_check_exit_codes(tmp_path) -> None:
    runner = CliRunner()
    d, data = user_set(tmp_path)
    write(d, data)
    ok = runner.invoke(app, ["exemplars", "check", str(d), "--out", str(tmp_path / "ok.html")])
    assert ok.exit_code == 0, ok.output
    assert "1 exemplar(s), 0 problem(s)" in ok.output and (tmp_path / "ok.html").is_file()
    data["turns"][3]["answer"] = "C"
    write(d, data)
    bad = runner.invoke(app, ["exemplars", "check", str(d)])
    assert bad.exit_code == 1 and "turns[3].answer" in bad.output and "dfs-2.json" in bad.output
    missing = runner.invoke(app, ["exemplars", "check", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no such exemplar directory" in missing.output


def test_a_truncated_image_is_marked_on_the_page_and_the_rest_still_shown(tmp_path) -> None:
    d, data = user_set(tmp_path)
    write(d, data)
    write(d, {**data, "id": "dfs-3", "image": "dfs-3.jpg"}, name="dfs-3")
    whole = (d / "dfs-2.jpg").read_bytes()
    (d / "dfs-3.jpg").write_bytes(whole[: len(whole) // 2])
    res = CliRunner().invoke(app, ["exemplars", "check", str(d), "--out", str(tmp_path / "page.html")])
    assert res.exit_code == 1 and "dfs-3.json: image:" in res.output and "truncated" in res.output
    page = (tmp_path / "page.html").read_text()
    assert "dfs-2 &mdash; <span class=\"ok\">OK" in page and "dfs-3 &mdash; <span class=\"bad\">1 problem(s)" in page
