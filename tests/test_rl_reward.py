"""The RL reward (train/rl/reward.py): the first answer scored by the rule judge or an LLM judge on a real
loopback OpenAI-compatible server; over-turn and unanswered trajectories score 0 without a judge call; a judge
that cannot decide is retried, and one that still fails raises instead of scoring 0. Also loaded and called the
way verl does (its reward-function loader with our `reward_kwargs`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from loopback_teacher import Fault, LoopbackTeacher, RequestView
from needs_verl import require_verl

from minio3_data.profiles import get_profile
from train.rl.reward import JudgeFailed, close_judges, compute_score

QUESTION = "What colour is the car?"
FAST = {"max_retries": 0, "backoff_base": 0.001, "backoff_max": 0.01}  # the judge client's own retries: none


def _grader(view: RequestView) -> str:
    """A judge model: correct when the prediction says crimson (for ground truth red)."""
    return "Score: 1" if "Prediction: crimson" in view.texts[-1] else "Score: 0"


def rollout_info(answer: str | None, *, overturn: bool = False, **extra: Any) -> dict[str, Any]:
    """A sample's extra_info as verl's reward manager builds it: the row's extra_info plus the loop's fields."""
    return {"item_id": "car1", "question": QUESTION, "options": [], "overturn": overturn, "answer": answer,
            "assistant_turns": 2, "zooms": 1, **extra}  # fmt: skip


def score(info: dict[str, Any], truth: str = "red", **kwargs: Any) -> dict[str, float]:
    async def scored() -> dict[str, float]:
        try:
            return await compute_score("synthetic/hard", "(unused)", truth, info, **kwargs)
        finally:
            await close_judges()

    return asyncio.run(scored())


def llm(srv: LoopbackTeacher, **kwargs: Any) -> dict[str, Any]:
    return {"judge": "openai:loopback-model", "judge_base_urls": [srv.openai_url], "judge_api_key_env": "NONE",
            "judge_options": FAST, "judge_backoff": 0.001, **kwargs}  # fmt: skip


def test_rule_judge_scores_the_first_answer() -> None:
    options = {"options": ["green", "red"]}
    assert score(rollout_info("B", **options), "B") == {
        "score": 1.0, "acc": 1.0, "overturn": 0.0, "answered": 1.0, "turns": 2.0, "zooms": 1.0,
    }  # fmt: skip
    assert score(rollout_info("(B) red", **options), "B")["acc"] == 1.0
    assert score(rollout_info("green", **options), "B")["acc"] == 0.0
    assert score(rollout_info("three"), "3")["acc"] == 1.0


def test_overturn_and_no_answer_score_zero_without_asking_the_judge() -> None:
    with LoopbackTeacher(_grader) as srv:
        overturn = score(rollout_info("crimson", overturn=True), **llm(srv))
        unanswered = score(rollout_info(None), **llm(srv))
        assert srv.count == 0
    assert overturn == {"score": 0.0, "acc": 0.0, "overturn": 1.0, "answered": 0.0, "turns": 2.0, "zooms": 1.0}
    assert unanswered["score"] == 0.0 and unanswered["answered"] == 0.0 and unanswered["overturn"] == 0.0


def test_llm_judge_on_a_loopback_server() -> None:
    with LoopbackTeacher(_grader) as srv:
        assert score(rollout_info("crimson"), **llm(srv))["acc"] == 1.0
        assert score(rollout_info("blue"), **llm(srv))["acc"] == 0.0
        prompt = srv.requests[0].view.texts[-1]
        assert f"Question: {QUESTION}" in prompt and "Ground truth: red" in prompt and "Prediction: crimson" in prompt


def test_a_failing_judge_is_retried_not_scored_zero() -> None:
    """The judge fails (HTTP 500, its client does not retry here) on two calls in a row; the reward asks
    again and gets the verdict."""

    async def two_samples(srv: LoopbackTeacher) -> list[dict[str, float]]:
        try:
            first = await compute_score("s", "", "red", rollout_info("crimson"), **llm(srv))
            srv.inject(Fault.server_error(500), times=2)
            second = await compute_score("s", "", "red", rollout_info("crimson"), **llm(srv))
            return [first, second]
        finally:
            await close_judges()

    with LoopbackTeacher(_grader) as srv:
        first, second = asyncio.run(two_samples(srv))
        assert first["acc"] == second["acc"] == 1.0 and srv.count == 4


def test_a_judge_that_keeps_failing_raises_instead_of_scoring_zero() -> None:
    async def two_samples(srv: LoopbackTeacher) -> None:
        try:
            await compute_score("s", "", "red", rollout_info("crimson"), **llm(srv))  # the server serves at first
            srv.inject_every(1, Fault.server_error(500))
            await compute_score("s", "", "red", rollout_info("crimson"), **llm(srv, judge_attempts=3))
        finally:
            await close_judges()

    failed = pytest.raises(JudgeFailed, match=r"item car1: judge openai:loopback-model could not score .* in 3 tries")
    with LoopbackTeacher(_grader) as srv, failed:
        asyncio.run(two_samples(srv))
    assert srv.count == 1 + 3


def test_an_unparsable_judge_is_retried_then_raises() -> None:
    unparsable = pytest.raises(JudgeFailed, match="no 'Score: 0|1' line")
    with LoopbackTeacher(lambda view: "Looks right to me.") as srv, unparsable:
        score(rollout_info("crimson"), **llm(srv, judge_attempts=2))


def test_rows_without_the_agent_loops_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="minio3_zoom agent loop's fields; missing overturn, answer"):
        score({"question": QUESTION})


def test_verl_loads_and_calls_it_with_our_reward_kwargs(tmp_path: Any) -> None:
    """verl's loader (`get_custom_reward_fn`) on the config train/rl/plugins.py writes, judge settings included."""
    require_verl()
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    from train.rl.plugins import rollout_config

    with LoopbackTeacher(_grader) as srv:
        values = rollout_config(get_profile("released"), "openai:loopback-model", judge_base_urls=[srv.openai_url],
                                judge_api_key_env="NONE")  # fmt: skip
        cfg = OmegaConf.create({})
        for key, value in values.items():
            OmegaConf.update(cfg, key, value, force_add=True)
        fn = get_custom_reward_fn(cfg)
        assert fn is not None

        async def call() -> dict[str, float]:
            try:
                return await fn(data_source="s", solution_str="", ground_truth="red", extra_info=rollout_info("crimson"))
            finally:
                await fn.args[0].__globals__["close_judges"]()  # the module as verl loaded it, from its file

        result = asyncio.run(call())
        assert result["acc"] == 1.0 and srv.count == 1
