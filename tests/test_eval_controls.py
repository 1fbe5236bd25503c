"""The settings that make an eval the release's, and the control that tells a searching model from a guessing
one: generation limits from the protocol profile (a turn's tokens decoupled from the context's reserve), and
`--ablate crop-black` (every observation black at its displayed size) set beside the plain eval by compare."""

from __future__ import annotations

import io
import json
from pathlib import Path

from loopback_teacher import ZOOM_REPLY, LoopbackTeacher, RequestView, planned
from PIL import Image
from test_eval import BOATS, KITE, SIGN, dataset
from typer.testing import CliRunner

from cli import app
from minio3_data.records import read_trajectories
from minio3_data.teacher_options import TeacherOptions
from pipelines.eval import eval_config, evaluate

runner = CliRunner()
RIGHT = {KITE: "red", BOATS: "3", SIGN: "dog"}


def test_an_eval_defaults_to_the_release_limits(tmp_path: Path) -> None:
    run = eval_config(tmp_path / "d", tmp_path / "o", teacher="scripted").run
    assert (run.max_tokens, run.context_tokens, run.reserve) == (8192, 32768, 2000)
    mine = eval_config(tmp_path / "d", tmp_path / "o", teacher="scripted", max_tokens=1024).run
    assert (mine.max_tokens, mine.reserve) == (1024, 2000)  # raising or lowering one leaves the other


def test_a_turn_is_cut_to_the_room_left_not_refused_for_want_of_max_tokens(tmp_path: Path) -> None:
    """A policy that zooms for ever in a 4,000-token context with 2,000 tokens a turn: reserving a whole turn
    (the old coupling) stops it as soon as less than 2,000 tokens are left; reserving 500 lets it go on, each
    request asking for no more than the room the context has left."""
    data = dataset(tmp_path / "data")
    forever = {KITE: [(None, None)], BOATS: [(None, None)], SIGN: [(None, None)]}
    turns, asked = {}, {}
    for reserve in (2000, 500):
        out = tmp_path / f"r{reserve}"
        with LoopbackTeacher(planned(forever)) as srv:
            client = TeacherOptions(model="policy", base_urls=[srv.openai_url], api_key_env="NONE", timeout=5.0)
            evaluate(eval_config(data, out, budgets=[32], k=1, teacher="openai", progress=False, client=client,
                                 context_tokens=4000, max_tokens=2000, context_reserve=reserve))  # fmt: skip
            asked[reserve] = [r.body.get("max_completion_tokens") or r.body["max_tokens"] for r in srv.requests]
        trajs = read_trajectories(out / "trajectories.parquet")
        turns[reserve] = sorted(t.num_turns for t in trajs)
        assert all(t.status == "over_turn" and t.num_turns < 32 for t in trajs)  # the context ended them
    assert all(long > short for long, short in zip(turns[500], turns[2000])), turns
    assert set(asked[2000]) == {2000} and max(asked[500]) == 2000
    assert 500 <= min(asked[500]) < 2000  # cut to the room left, never below the reserve


def sees_or_guesses(seen: list[tuple[tuple[int, int], bool]]):
    """A policy that zooms once, then answers right only when its last image (the crop) is not black; it
    records each crop's size and whether it was black."""

    def policy(view: RequestView) -> str:
        if view.turn == 0:
            return ZOOM_REPLY
        crop = Image.open(io.BytesIO(view.images()[-1])).convert("L")
        black = crop.getextrema()[1] <= 16
        seen.append((crop.size, black))
        answer = "none" if black else next(a for q, a in RIGHT.items() if q in view.question)
        return f"<think>Looked.</think>\n<answer>{answer}</answer>"

    return policy


def blind_eval(data: Path, out: Path, seen: list, *more: str) -> tuple[int, str]:
    with LoopbackTeacher(sees_or_guesses(seen)) as srv:
        res = runner.invoke(app, ["eval", "--dataset", str(data), "--out", str(out), "--k", "2", "--max-turns",
                                  "1,2,4", "--teacher", "openai", "--model", "policy", "--api-key-env", "NONE",
                                  "--base-url", srv.openai_url, *more])  # fmt: skip
    return res.exit_code, res.output


def test_a_model_that_uses_its_crops_scores_lower_with_them_black(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    plain_seen: list = []
    blind_seen: list = []
    assert blind_eval(data, tmp_path / "plain", plain_seen)[0] == 0
    code, output = blind_eval(data, tmp_path / "blind", blind_seen, "--ablate", "crop-black")
    assert code == 0, output
    plain, blind = (json.loads((tmp_path / n / "results.json").read_text()) for n in ("plain", "blind"))
    by_budget = {n: [r["groups"]["all"]["by_budget"][b]["avg_at_k"] for b in ("1", "2", "4")]
                 for n, r in (("plain", plain), ("blind", blind))}  # fmt: skip
    assert by_budget == {"plain": [0.0, 1.0, 1.0], "blind": [0.0, 0.0, 0.0]}
    assert blind["ablation"] == "crop-black" and plain["ablation"] is None
    assert not any(black for _, black in plain_seen) and all(black for _, black in blind_seen)
    assert sorted(size for size, _ in blind_seen) == sorted(size for size, _ in plain_seen)  # only pixels change
    assert "ablation crop-black" in (tmp_path / "blind" / "results.md").read_text().splitlines()[0]

    res = runner.invoke(app, ["compare", str(tmp_path / "plain"), str(tmp_path / "blind"), "--out",
                              str(tmp_path / "cmp")])  # fmt: skip
    assert res.exit_code == 0, res.output
    table = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| crop-black |" in table and "| blind - plain | +0.0 [+0.0, +0.0] | -100.0" in table
    record = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [e["ablation"] for e in record["evals"]] == [None, "crop-black"]


def test_an_ablated_eval_never_resumes_as_a_plain_one(tmp_path: Path) -> None:
    data = dataset(tmp_path / "data")
    assert blind_eval(data, tmp_path / "blind", [], "--ablate", "crop-black")[0] == 0
    code, output = blind_eval(data, tmp_path / "blind", [])
    assert code == 2 and 'made with different ablate; resume with the same options (it has ablate "crop-black", ' \
        "not none)" in output
    code, output = blind_eval(data, tmp_path / "other", [], "--ablate", "crop-white")
    assert code == 2 and "--ablate 'crop-white': use crop-black" in output
