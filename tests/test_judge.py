"""Rule judge, strict "Score: 0|1" parsing, and the LLM judge over a loopback server."""

from __future__ import annotations

import asyncio

import pytest
from loopback_teacher import Fault, LoopbackTeacher, RequestView, fast_teacher

from minio3_data.errors import BadInputError
from minio3_data.judge import LLMJudge, RuleJudge, make_judge, normalize, parse_score, rule_judge
from minio3_data.teachers import TeacherUnavailable

OPTIONS = ["red", "blue", "green"]


@pytest.mark.parametrize(
    ("prediction", "label"),
    [
        ("B", "correct"),
        ("(B)", "correct"),
        ("B.", "correct"),
        ("b", "correct"),
        ("B) blue", "correct"),
        ("B. blue", "correct"),
        ("**B**", "correct"),
        ("Blue.", "correct"),  # the option's own text
        ("A", "wrong"),
        ("(C)", "wrong"),
        ("red", "wrong"),
        ("D", "wrong"),  # not an option
        ("Between the two, blue", "wrong"),  # names no option cleanly: the rule does not guess
    ],
)
def test_rule_judge_multiple_choice(prediction: str, label: str):
    assert rule_judge(prediction, "B", OPTIONS).label == label


def test_rule_judge_accepts_ground_truth_given_as_option_text():
    assert rule_judge("(C)", "green", OPTIONS).correct
    assert not rule_judge("A", "green", OPTIONS).correct


@pytest.mark.parametrize(
    ("prediction", "truth", "label"),
    [
        ("3", "three", "correct"),
        ("3.0", "3", "correct"),
        ("There are 3 cars.", "3", "correct"),
        ("1,000", "1000", "correct"),
        ("3 or 4", "3", "wrong"),
        ("4", "3", "wrong"),
        ("The Red Car!", "red car", "correct"),
        ("a  red   car", "Red car.", "correct"),
        ("red truck", "red car", "wrong"),
        ("STOP", "stop", "correct"),
        ("", "stop", "wrong"),
    ],
)
def test_rule_judge_open_ended(prediction: str, truth: str, label: str):
    assert rule_judge(prediction, truth).label == label


def test_normalize():
    assert normalize("The answer: 2.50 dollars, twenty!") == ["answer", "2.5", "dollars", "20"]


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("Score: 1", 1),
        ("Score: 0", 0),
        ("score:1", 1),
        ("The prediction names the same colour.\nScore: 1", 1),
        ("Score: 10", None),
        ("Score: 1.", None),
        ("score 1 but actually 0", None),
        ("I'd give 1", None),
        ("Score: 1\nScore: 0", None),
        ("Score: 1 (the score could also be 0)", None),
        ("Score: 1\nOn reflection the score should be 0", None),
        ("1", None),
        ("", None),
    ],
)
def test_parse_score_is_strict(reply: str, score: int | None):
    assert parse_score(reply) == score


def _grader(view: RequestView) -> str:
    """A judge model: correct when the prediction line says crimson (for ground truth red)."""
    prompt = view.texts[-1]
    return "Score: 1" if "Prediction: crimson" in prompt else "Score: 0"


def _judge(srv: LoopbackTeacher, api: str = "openai", **options) -> LLMJudge:
    return LLMJudge(fast_teacher(api, srv, **options))


async def _verdicts(judge, *predictions: str, truth: str = "red", options: list[str] | None = None):
    try:
        return [await judge.judge("What colour is the car?", p, truth, options or []) for p in predictions]
    finally:
        await judge.aclose()


@pytest.mark.parametrize("api", ["openai", "gemini"])
def test_llm_judge_over_loopback(api: str):
    with LoopbackTeacher(_grader) as srv:
        good, bad = asyncio.run(_verdicts(_judge(srv, api), "crimson", "blue"))
        assert (good.label, bad.label) == ("correct", "wrong")
        assert good.how == f"{api}:loopback-model"
        prompt = srv.requests[0].view.texts[-1]
        assert "Question: What colour is the car?" in prompt and "Ground truth: red" in prompt
        assert srv.requests[0].body.get("temperature", 0.0) == 0.0


def test_llm_judge_retries_an_unparsable_reply():
    with LoopbackTeacher(_grader) as srv:
        srv.inject(Fault.malformed("I'd give it a 1"))
        (verdict,) = asyncio.run(_verdicts(_judge(srv), "crimson"))
        assert verdict.label == "correct" and srv.count == 2


def test_llm_judge_that_never_parses_is_unjudged_not_correct():
    with LoopbackTeacher(lambda view: "1 - looks right to me") as srv:
        (verdict,) = asyncio.run(_verdicts(_judge(srv), "crimson"))
        assert verdict.label == "unjudged" and "no 'Score: 0|1' line" in verdict.how
        assert srv.count == 3


def test_llm_judge_failure_is_unjudged():
    """A judge request that fails for good, once the server has served, leaves that answer unjudged."""
    with LoopbackTeacher(_grader) as srv:
        srv.inject_every(2, Fault.server_error(500))  # the first request is served, then every second fails
        first, second = asyncio.run(_verdicts(_judge(srv, max_retries=0), "crimson", "crimson"))
        assert first.label == "correct"
        assert second.label == "unjudged" and second.how.startswith("judge openai:loopback-model: ")
        assert "HTTP 500" in second.how  # the judge's server failed, and says so: not the teacher's


def test_llm_judge_refused_from_the_start_stops_the_run():
    """A judge whose server fails every request from the first one is misconfigured: not 'unjudged'."""
    with LoopbackTeacher(_grader, error_shape="fastapi") as srv:
        srv.inject_every(1, Fault.server_error(500))
        with pytest.raises(TeacherUnavailable, match="^judge openai:loopback-model: .*on each of the first 3 requests"):
            asyncio.run(_verdicts(_judge(srv, max_retries=5), "crimson"))
        assert srv.count == 3


def test_llm_judge_skips_the_model_when_the_rule_already_agrees():
    with LoopbackTeacher(_grader) as srv:
        (verdict,) = asyncio.run(_verdicts(_judge(srv), "(B)", truth="B", options=["green", "red"]))
        assert verdict.correct and verdict.how == "rule: option" and srv.count == 0


def test_llm_judge_prompt_spells_out_options():
    with LoopbackTeacher(_grader) as srv:
        judge = _judge(srv)
        prompt = judge.prompt("Which colour?", "scarlet", "B", ["green", "red"])
        asyncio.run(judge.aclose())
    assert "A. green\nB. red" in prompt and "Ground truth: B. red" in prompt and "Prediction: scarlet" in prompt


def test_make_judge_specs(monkeypatch):
    assert isinstance(make_judge("rule"), RuleJudge)
    assert asyncio.run(make_judge("rule").judge("q", "three", "3", [])).correct
    with pytest.raises(BadInputError, match="use rule, openai:MODEL or gemini:MODEL"):
        make_judge("gpt-4o")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(BadInputError, match="OPENAI_API_KEY"):
        make_judge("openai:gpt-4o")
    with LoopbackTeacher(_grader) as srv:
        judge = make_judge("openai:gpt-4o", base_urls=[srv.openai_url], api_key_env="NONE")
        assert isinstance(judge, LLMJudge) and judge.name == "openai:gpt-4o"
        (verdict,) = asyncio.run(_verdicts(judge, "crimson"))
        assert verdict.correct and verdict.how == "openai:gpt-4o"
