"""The rollout end to end through verl's REAL code, on CPU: our data rows (train/rl/data.py) read by verl's
RLHFDataset, run by verl's AgentLoopWorker (registry lookup, hydra instantiation, ToolAgentLoop's state machine,
the continuous-token builder, our parser, our zoom tool through `_call_tool`, postprocessing with M-RoPE
positions and processor outputs) and scored by verl's reward-loop worker with our reward function. Only the
LLM server (scripted turns) and the processor factory (no torchvision) stand in (tests/rl_stand_ins.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from export_fixtures import write_image
from needs_verl import require_verl

from minio3_data.images import OriginalCache
from minio3_data.profiles import get_profile
from minio3_data.protocol import Answer, Zoom, render_turn
from minio3_data.records import ProbeItem, write_items
from minio3_data.zoom import ZoomEnv

IMAGE_SIZE = (1600, 1200)
ORIGINAL = "original_image"
A, B = (0.1, 0.2, 0.6, 0.7), (0.25, 0.25, 0.75, 0.75)
MALFORMED = '<think>Zoom in.</think>\n<grounding>{"bbox_2d":[0.2,0.2,0.5,0.5],"source":"original_image"}</grounding>'
VOID = "<think>It is probably blue.</think> The answer is B."


def zoom(bbox: tuple[float, ...], source: str = ORIGINAL) -> str:
    return render_turn("The sign is too small; zoom in.", Zoom(bbox, source))  # type: ignore[arg-type]


def answer(text: str = "B") -> str:
    return render_turn("Now it is clear.", Answer(text))


# question -> the scripted turns of its trajectory (the rows' budgets: 3 turns, 12 images unless a test says)
SCRIPTS: dict[str, list[Any]] = {
    "Case answer-first: what colour is the sign?": [answer()],
    "Case zoom-answer: what colour is the sign?": [zoom(A), answer()],
    "Case nested: what colour is the sign?": [zoom(A), zoom(B, "observation_1"), answer()],
    "Case zoom-last: what colour is the sign?": [zoom(A), zoom(B, "observation_1"), zoom(B, "observation_2")],
    "Case answer-last: what colour is the sign?": [zoom(A), zoom(B, "observation_1"), answer("A")],
    "Case malformed: what colour is the sign?": [MALFORMED, zoom(A), answer()],
    "Case void: what colour is the sign?": [VOID],
    "Case image-cap: what colour is the sign?": [zoom(A), zoom(B, "observation_1"), answer()],
}
IMAGE_CAP_CASE = "Case image-cap: what colour is the sign?"


@pytest.fixture(scope="module")
def rl() -> Any:
    """tests/rl_stand_ins.py, once verl is known to import (it imports verl)."""
    require_verl()
    import rl_stand_ins

    return rl_stand_ins


@pytest.fixture(scope="module")
def setup(rl: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One original image and the tiny model; `rows_for` makes verl parquet for a set of questions."""
    tmp = tmp_path_factory.mktemp("rl")
    image = write_image(tmp / "scene.jpg", IMAGE_SIZE)
    return {"tmp": tmp, "image": image, "model": rl.write_tiny_model(tmp / "model")}


def rows_for(setup: dict[str, Any], questions: list[str], protocol: str) -> Path:
    """A dataset dir holding one item per question (all on the one image) turned into verl parquet by
    train/rl/data.py (3-turn budget); returns the train parquet."""
    from train.rl.agent_loop import AGENT_LOOP
    from train.rl.data import write_rl_data

    root = setup["tmp"] / f"data{len(list(setup['tmp'].glob('data*')))}"
    (root / "images").mkdir(parents=True)
    os.link(setup["image"], root / "images" / "scene.jpg")  # a hard link: a symlink would leave the dir
    items = [
        ProbeItem(id=f"item{k}", image="images/scene.jpg", question=q, answer="B", options=["red", "blue"],
                  width=IMAGE_SIZE[0], height=IMAGE_SIZE[1], source="synthetic", difficulty="hard")
        for k, q in enumerate(questions)
    ]  # fmt: skip
    write_items(root / "train.parquet", items)
    write_items(root / "test.parquet", items[:1])
    return Path(write_rl_data(root, root / "rl", protocol=get_profile(protocol), max_turns=3, agent_name=AGENT_LOOP).files["train"])


def rollout(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch, questions: list[str], *,
            protocol: str = "released", response_length: int = 4096, scripts: dict[str, list[Any]] = SCRIPTS,
            extra: dict[str, Any] | None = None, cfg: Any = None) -> tuple[Any, Any, Any, dict[str, int]]:  # fmt: skip
    """Run the questions' rows through verl's worker; returns (output, server, worker, question -> output row)."""
    cfg = cfg or rl.compose_config(setup["model"], protocol=protocol, response_length=response_length)
    server = rl.ScriptedServer(lambda q, t: scripts[q][t], list(scripts))
    worker = rl.make_worker(cfg, server, monkeypatch)
    rows = rl.dataset_rows(cfg, worker, rows_for(setup, questions, protocol))
    for row in rows:
        row["extra_info"].update(extra or {})
        if row["extra_info"]["question"] == IMAGE_CAP_CASE:
            row["extra_info"]["max_images"] = 2
    out = rl.run_rows(worker, rows)
    index = {row["extra_info"]["question"]: i for i, row in enumerate(rows)}
    return out, server, worker, index


def field(out: Any, name: str, i: int) -> Any:
    return out.non_tensor_batch[name][i]


def replay(image: Path, zooms: list[tuple[tuple[float, ...], str]], protocol: str = "released") -> list[Any]:
    """The observations an independent ZoomEnv gives for the same zooms (the export's replay)."""
    env = ZoomEnv(image, cache=OriginalCache(), protocol=get_profile(protocol))
    for bbox, source in zooms:
        env.step(Zoom(bbox, source))  # type: ignore[arg-type]
    return [obs.image for obs in env.observations]


def same_pixels(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(x.size == y.size and np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


# --- the plug-ins are registered where verl looks them up ------------------------------------------------


def test_plugins_registered_in_verls_registries(rl: Any, setup: dict[str, Any]) -> None:
    from omegaconf import OmegaConf
    from verl.experimental.agent_loop.agent_loop import _agent_loop_registry
    from verl.experimental.agent_loop.tool_parser import ToolParser
    from verl.tools.tool_registry import initialize_tools_from_config
    from verl.trainer.ppo.reward import get_custom_reward_fn

    from train.rl import agent_loop, plugins, reward, tool

    assert {"grounding_released", "grounding_minio3"} <= set(ToolParser._registry)
    assert _agent_loop_registry[agent_loop.AGENT_LOOP]["_target_"] == "train.rl.agent_loop.ZoomAgentLoop"
    from minio3_data.profiles import PROFILES

    rl_profiles = {name for name, p in PROFILES.items() if "rl" in p.stages}
    assert {"released", "minio3"} <= rl_profiles and "deepeyes" not in rl_profiles
    assert set(plugins.REGISTERED["tool_parser"]) == {f"grounding_{name}" for name in rl_profiles}
    assert set(plugins.REGISTERED["tool_parser"]) <= set(ToolParser._registry)
    assert plugins.REGISTERED["agent_loop"] == (agent_loop.AGENT_LOOP,)
    tools_yaml = setup["tmp"] / "tools.yaml"
    OmegaConf.save(OmegaConf.create(tool.tool_config()), tools_yaml)
    (zoom_tool,) = initialize_tools_from_config(str(tools_yaml))
    assert isinstance(zoom_tool, tool.ZoomTool) and zoom_tool.name == "zoom"
    fn = get_custom_reward_fn(rl.compose_config(setup["model"]))
    assert fn is not None and fn.args[0].__name__ == reward.compute_score.__name__


# --- the trajectories ---------------------------------------------------------------------------------------


def test_answer_in_turn_one(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    q = "Case answer-first: what colour is the sign?"
    out, server, _, index = rollout(rl, setup, monkeypatch, [q])
    i = index[q]
    assert rl.runs(rl.response_mask(out, i)) == [(1, len(server.turn_ids(answer())))]
    assert field(out, "overturn", i) is False and field(out, "assistant_turns", i) == 1
    assert out.non_tensor_batch["__num_turns__"][i] == 2  # verl: user + assistant turns + 1
    assert rl.grid(out, i).shape[0] == 1 and len(server.images(q)) == 1
    assert same_pixels(server.images(q), replay(setup["image"], []))  # ZoomEnv's first view, not qwen-vl-utils'
    assert field(out, "acc", i) == 1.0 and field(out, "score", i) == 1.0  # rule judge via verl's reward worker


def test_zoom_then_answer_and_nested_observation(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    one, nested = "Case zoom-answer: what colour is the sign?", "Case nested: what colour is the sign?"
    out, server, worker, index = rollout(rl, setup, monkeypatch, [one, nested])
    for q, zooms in ((one, [(A, ORIGINAL)]), (nested, [(A, ORIGINAL), (B, "observation_1")])):
        i = index[q]
        turns = SCRIPTS[q]
        mask = rl.runs(rl.response_mask(out, i))
        assert [v for v, _ in mask] == [1, 0] * len(zooms) + [1]
        assert [n for v, n in mask if v == 1] == [len(server.turn_ids(t)) for t in turns]
        assert field(out, "overturn", i) is False and field(out, "zooms", i) == len(zooms)
        assert field(out, "assistant_turns", i) == len(turns) and out.non_tensor_batch["__num_turns__"][i] == 2 * len(turns)
        # every image the policy saw is ZoomEnv's: crops of crops cut from the original with the composed box
        assert same_pixels(server.images(q), replay(setup["image"], zooms))
        assert rl.grid(out, i).shape[0] == len(zooms) + 1
        assert field(out, "acc", i) == 1.0
    text = worker.tokenizer.decode(rl.sequence_ids(out, index[nested]))
    released = get_profile("released")
    for t in range(2):  # the observation turns, in the profile's words, image in place
        before, after = released.observation_parts(t, t + 1)
        assert f"<|im_start|>user\n{before}<|vision_start|>" in text and f"<|vision_end|>{after}<|im_end|>" in text


def test_zoom_at_the_last_turn_is_an_overturn_and_masked(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    q = "Case zoom-last: what colour is the sign?"
    out, _, _, index = rollout(rl, setup, monkeypatch, [q])
    i = index[q]
    assert set(rl.response_mask(out, i)) == {0}  # the whole trajectory out of the loss
    assert field(out, "overturn", i) is True and field(out, "overturn_reason", i) == "turns"
    assert field(out, "assistant_turns", i) == 3 and field(out, "zooms", i) == 2  # the last zoom is not executed
    assert rl.grid(out, i).shape[0] == 3
    assert field(out, "score", i) == 0.0 and field(out, "overturn", i) is True


def test_answer_at_the_last_turn_is_not_an_overturn(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    q = "Case answer-last: what colour is the sign?"
    out, _, _, index = rollout(rl, setup, monkeypatch, [q])
    i = index[q]
    assert field(out, "overturn", i) is False and field(out, "assistant_turns", i) == 3
    assert 1 in rl.response_mask(out, i)
    assert field(out, "answer", i) == "A" and field(out, "acc", i) == 0.0  # answered, wrongly


def test_turn_budget_is_per_sample(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The validation budget (a larger max_turns in the row) lets the same trajectory finish."""
    q = "Case zoom-last: what colour is the sign?"
    scripts = {**SCRIPTS, q: [*SCRIPTS[q], answer()]}
    out, _, _, index = rollout(rl, setup, monkeypatch, [q], scripts=scripts, extra={"max_turns": 12})
    assert field(out, "overturn", index[q]) is False and field(out, "assistant_turns", index[q]) == 4


def test_malformed_action_gets_the_error_turn(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    q = "Case malformed: what colour is the sign?"
    out, server, worker, index = rollout(rl, setup, monkeypatch, [q])
    i = index[q]
    released = get_profile("released")
    reason = "'NoneType' object has no attribute 'group'"  # the release's pattern needs `{"bbox_2d": `
    text = worker.tokenizer.decode(rl.sequence_ids(out, i))
    assert f"<|im_start|>user\n{released.error_text(reason)}<|im_end|>" in text
    # the released numbering drifts after an error turn: Action 1 shows "Observation 2" for observation_1
    before, _ = released.observation_parts(1, 1)
    assert "Observation 2" in before and before in text
    assert [v for v, _ in rl.runs(rl.response_mask(out, i))] == [1, 0, 1, 0, 1]
    assert field(out, "zoom_errors", i) == 1 and field(out, "zooms", i) == 1 and field(out, "overturn", i) is False
    assert [len(r.images) for r in server.requests] == [1, 1, 2]  # no image for the error turn


def test_void_turn_ends_the_trajectory(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    q = "Case void: what colour is the sign?"
    out, _, _, index = rollout(rl, setup, monkeypatch, [q])
    i = index[q]
    assert field(out, "assistant_turns", i) == 1 and field(out, "overturn", i) is False
    assert field(out, "answer", i) is None and field(out, "score", i) == 0.0 and field(out, "answered", i) == 0.0


def test_image_cap_is_an_overturn(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    out, _, _, index = rollout(rl, setup, monkeypatch, [IMAGE_CAP_CASE])
    i = index[IMAGE_CAP_CASE]
    assert field(out, "overturn", i) is True and field(out, "overturn_reason", i) == "images"
    assert field(out, "zooms", i) == 1 and rl.grid(out, i).shape[0] == 2  # the second zoom is not executed
    assert set(rl.response_mask(out, i)) == {0}


def test_context_overflow_is_an_overturn(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """verl drops a tool turn that would not fit (over-turn); an answer cut by the budget, or running past it,
    is an over-turn; an answer that ends exactly at the budget is not."""
    long_think = "<think>" + " ".join(["the sign is small and far"] * 40) + "</think>\n<answer>B</answer>"
    scripts = {
        "Case tool-overflow: zoom": [zoom(A), answer()],
        "Case cut: answer": [rl.Unfinished(long_think)],
        "Case overshoot: answer": [long_think],
    }
    out, server, _, index = rollout(rl, setup, monkeypatch, list(scripts), scripts=scripts, response_length=120)
    assert {q: (field(out, "overturn", i), field(out, "overturn_reason", i)) for q, i in index.items()} == {
        q: (True, "context") for q in scripts
    }
    assert len(server.turn_ids(long_think)) > 120 and len(server.turn_ids(zoom(A))) < 120
    assert rl.grid(out, index["Case tool-overflow: zoom"]).shape[0] == 1  # the dropped tool turn's image too
    exact = {"Case exact: answer": [answer()]}
    budget = len(server.turn_ids(answer()))
    out, _, _, index = rollout(rl, setup, monkeypatch, list(exact), scripts=exact, response_length=budget)
    (i,) = index.values()
    assert len(rl.response_mask(out, i)) == budget
    assert field(out, "overturn", i) is False and field(out, "acc", i) == 1.0


# --- protocol ------------------------------------------------------------------------------------------


def test_minio3_protocol_rollout(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The minio3 profile end to end: its system prompt from the data, its parser, a turn without an action
    answered with an error turn (the released profile would end there), observation numbered by crop."""
    q = "Case void: what colour is the sign?"
    scripts = {**SCRIPTS, q: [VOID, zoom(A), answer()]}
    out, _, worker, index = rollout(rl, setup, monkeypatch, [q], protocol="minio3", scripts=scripts)
    i = index[q]
    minio3 = get_profile("minio3")
    text = worker.tokenizer.decode(rl.sequence_ids(out, i))
    assert text.startswith(f"<|im_start|>system\n{minio3.system_prompt}<|im_end|>")
    assert minio3.error_text(minio3.parse_turn(VOID).reason) in text  # type: ignore[union-attr]
    assert minio3.observation_parts(1, 1)[0] in text and "(Observation 1)" in text
    assert field(out, "overturn", i) is False and field(out, "acc", i) == 1.0


def test_rows_of_another_protocol_are_refused(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    q = "Case answer-first: what colour is the sign?"
    with pytest.raises(ValueError, match="rendered in protocol 'released', but the rollout speaks 'minio3'"):
        rollout(rl, setup, monkeypatch, [q], protocol="minio3", extra={"protocol": "released"})


def test_a_non_grounding_parser_is_refused(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = rl.compose_config(setup["model"])
    cfg.actor_rollout_ref.rollout.multi_turn.format = "hermes"
    q = "Case answer-first: what colour is the sign?"
    with pytest.raises(Exception, match="multi_turn.format to one of grounding_released, grounding_minio3"):
        rollout(rl, setup, monkeypatch, [q], cfg=cfg)  # hydra wraps the loop's ValueError
