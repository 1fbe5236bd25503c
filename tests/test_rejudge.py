"""A rerun asks the judge again about the answers it did not decide, and nothing else: no policy request, the
trajectory kept, each judgement counted once (failed ones included), and a killed rerun loses and doubles nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loopback_teacher import LoopbackTeacher, RequestView, zoom_then_answer
from test_eval import KITE, dataset
from typer.testing import CliRunner

from cli import app
from minio3_data.records import read_trajectories
from minio3_data.store import ATTEMPTS
from minio3_data.teacher_options import TeacherOptions
from pipelines.eval import INCOMPLETE_EXIT
from pipelines.synth_coldstart import SynthConfig, synth_coldstart

runner = CliRunner()
VAGUE = "the one nearest the middle"  # an answer no rule accepts: the LLM judge is asked about every one
K = 2


class FlakyGrader:
    """A judge model that, while `down`, replies about the kite without the "Score: 0|1" line (paid replies the
    judge cannot read, so those answers stay unjudged) and says "Score: 1" otherwise."""

    def __init__(self, down: bool) -> None:
        self.down = down

    def __call__(self, view: RequestView) -> str:
        return "I would say it looks right." if self.down and KITE in view.texts[-1] else "Score: 1"


def _eval(data: Path, out: Path, policy: LoopbackTeacher, judge: LoopbackTeacher) -> tuple[int, str]:
    res = runner.invoke(app, ["eval", "--dataset", str(data), "--out", str(out), "--k", str(K), "--max-turns",
                              "1,2,4", "--teacher", "openai", "--model", "policy", "--api-key-env", "NONE",
                              "--base-url", policy.openai_url, "--judge", "openai:grader", "--judge-base-url",
                              judge.openai_url, "--judge-api-key-env", "NONE"])  # fmt: skip
    return res.exit_code, res.output


def _results(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def _trajectories(out: Path) -> list[tuple]:
    trajs = read_trajectories(out / "trajectories.parquet")
    return sorted((t.id, t.verdict.label, t.verdict.how, t.num_turns, t.usage) for t in trajs)


def test_a_rerun_judges_again_only_the_unjudged_answers_and_completes_the_eval(tmp_path: Path) -> None:
    data, out, clean = dataset(tmp_path / "data"), tmp_path / "eval", tmp_path / "clean"
    grader = FlakyGrader(down=True)
    with LoopbackTeacher(zoom_then_answer({}, fallback=VAGUE)) as policy, LoopbackTeacher(grader) as judge:
        code, output = _eval(data, out, policy, judge)
        assert code == INCOMPLETE_EXIT, output
        unjudged = _results(out)["completeness"]["unjudged_by_budget"]["4"]
        assert unjudged == K  # the kite's samples; the other 3 rows' answers were judged
        first_policy, first_judge = policy.count, judge.count
        assert first_judge == 3 * K + 3 * K  # 3 unreadable replies per kite answer, 1 per other answer

        grader.down = False
        code, output = _eval(data, out, policy, judge)
        assert code == 0, output
        assert policy.count == first_policy  # no policy request: the trajectories are kept as they are
        assert judge.count == first_judge + unjudged  # one request per answer left unjudged, no other
        judged = _results(out)
        assert judged["complete"] and judged["judge_usage"]["requests"] == judge.count  # every judgement paid
        assert judged["judge_usage"]["prompt_tokens"] > 0

        code, output = _eval(data, out, policy, judge)  # complete: nothing to ask anyone
        assert code == 0, output
        assert (policy.count, judge.count) == (first_policy, first_judge + unjudged)
        assert _results(out) == judged
    with LoopbackTeacher(zoom_then_answer({}, fallback=VAGUE)) as policy, LoopbackTeacher(FlakyGrader(False)) as judge:
        assert _eval(data, clean, policy, judge)[0] == 0
        never_failed = _results(clean)
    assert _trajectories(out) == _trajectories(clean)
    for record in (judged, never_failed):
        record.pop("judge_usage")  # the failed judgements were paid too
    assert judged == never_failed  # the policy's usage included: each request counted once


def test_a_rerun_killed_before_a_new_verdict_is_written_asks_again_and_doubles_nothing(tmp_path: Path) -> None:
    """A kill after the judge replied but before the verdict's line: the next rerun asks again (a second judgement,
    paid and counted), and the policy's usage is counted once."""
    data, out = dataset(tmp_path / "data"), tmp_path / "eval"
    grader = FlakyGrader(down=True)
    with LoopbackTeacher(zoom_then_answer({}, fallback=VAGUE)) as policy, LoopbackTeacher(grader) as judge:
        assert _eval(data, out, policy, judge)[0] == INCOMPLETE_EXIT
        paid = _results(out)["usage"]
        log = out / ATTEMPTS
        before = log.read_bytes()
        grader.down = False
        assert _eval(data, out, policy, judge)[0] == 0
        added = log.read_bytes()[len(before):].splitlines(keepends=True)
        assert len(added) == K and all(json.loads(line)["verdict"]["label"] == "correct" for line in added)
        log.write_bytes(before + added[0])  # killed after one verdict's line, before the other's
        asked = judge.count
        assert _eval(data, out, policy, judge)[0] == 0
        assert judge.count == asked + 1
        results = _results(out)
        assert results["usage"] == paid and results["judge_usage"]["requests"] == judge.count


def test_synthesis_keeps_an_answer_that_a_rerun_judged_correct(tmp_path: Path) -> None:
    data, run = dataset(tmp_path / "data"), tmp_path / "run"
    grader = FlakyGrader(down=True)
    with LoopbackTeacher(zoom_then_answer({}, fallback=VAGUE)) as policy, LoopbackTeacher(grader) as judge:
        cfg = SynthConfig(
            dataset=data, out=run, split="test", teacher="openai", target=None, samples_per_item=1,
            progress=False, judge="openai:grader", judge_base_urls=[judge.openai_url], judge_api_key_env="NONE",
            client=TeacherOptions(model="policy", base_urls=[policy.openai_url], api_key_env="NONE", timeout=5),
        )  # fmt: skip
        assert synth_coldstart(cfg).kept == 3  # every row but the kite
        sent = policy.count
        grader.down = False
        summary = synth_coldstart(cfg)
        assert summary.kept == 4 and policy.count == sent
    assert "kite#0" in {t.id for t in read_trajectories(run / "trajectories.parquet")}
