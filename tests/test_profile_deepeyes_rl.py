"""`deepeyes-rl` against a loopback policy speaking DeepEyes' RL tool convention, through a real
`minio3 eval --protocol deepeyes-rl`. Every expectation is the release's rule as the reference states it
(peer_conventions.md sections 1.3-1.6: `VisualToolBoxV2`), worked by hand here: never our own output."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from loopback_teacher import RequestView
from test_profile_deepeyes import ABORT, USER_PROMPT, VOID, ZOOM, Policy, run, sizes

from minio3_data.profiles import get_profile

ERRORS, ENDS = VOID, ABORT  # the deepeyes test's questions, answered here in the RL convention
CALL = '<tool_call>\n{{"name": "image_zoom_in_tool", "arguments": {{"bbox_2d": {box}}}}}\n</tool_call>'
TWO_CALLS = "<think>Zoom.</think>" + CALL.format(box="[0, 0, 10, 10]") + CALL.format(box="[2900.4, -20, 3050, 61.6]")
BAD_JSON = '{"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [1, 2, 3, 4]}'  # 69 chars, one brace short


class RLPolicy(Policy):
    """Speaks DeepEyes' RL convention."""

    def reply(self, question: str, turns: int) -> str:
        if ZOOM in question:  # two calls, then two answers: the last of each counts
            return TWO_CALLS if turns == 0 else "<answer>B</answer> On second look: <answer>A</answer>"
        if ERRORS in question:  # a 30 px high box, then a call that is not JSON, then the answer (B. dog)
            small, not_json = CALL.format(box="[100, 100, 300, 130]"), f"<tool_call>{BAD_JSON}</tool_call>"
            return [small, not_json, "<answer>B</answer>"][turns]
        return "<think>Hmm, let me look.</think>"  # neither tag: the rollout ends


def asked(policy: Policy, question: str) -> list[RequestView]:
    return [v for v in policy.seen if question in "".join(v.messages[1][1])]


def test_a_deepeyes_rl_policy_gets_the_rollouts_crops_error_turns_and_scores(tmp_path: Path) -> None:
    policy, table = run(tmp_path, "--protocol", "deepeyes-rl", policy=RLPolicy())
    first, second = asked(policy, ZOOM)
    # the texts are DeepEyes' (SYSTEM_PROMPT_V2; the eval's question turn, the train one being unreleased)
    assert first.messages[0][1] == [get_profile("deepeyes").system_prompt]
    assert "".join(first.messages[1][1]) == f"Question: {ZOOM}\nOptions: \nA. red\nB. blue\n\n{USER_PROMPT}"
    # first view: smart_resize(28, 3136, 12845056) of 3000x2000 = round(107.14)*28 x round(71.43)*28
    assert sizes(first) == [(2996, 1988)]
    # only the LAST call runs ([0, 0, 10, 10] would be refused): [2900.4, -20, 3050, 61.6] clamped to
    # [2900.4, 0, 3000, 61.6] (w 99.6, h 61.6 > 30, aspect 1.6), Pillow-rounded to [2900, 0, 3000, 62]:
    # 100x62 -> smart_resize: round(100/28) = 4 -> 112, round(62/28) = 2 -> 56; 112*56 >= 3136
    assert second.messages[2] == ("assistant", [TWO_CALLS], [])  # the model's own bytes, both calls
    role, texts, images = second.messages[-1]
    assert role == "user" and len(images) == 1
    assert texts[0] == "<tool_response>" and "".join(texts[1:]) == USER_PROMPT + "</tool_response>"
    assert sizes(second)[1] == (112, 56)
    trajectories = pl.read_parquet(tmp_path / "run" / "trajectories.parquet")
    zoom = trajectories.filter(pl.col("item_id") == "zoom").row(0, named=True)
    assert zoom["turns"][0]["box_px"] == [2900, 0, 3000, 62]
    assert zoom["final_answer"] == "A"  # the last <answer>, not the first ("B")
    # h = 130 - 100 = 30, not over 30: "Error: ZOOM IN ARGUMENTS ARE INVALID", a user turn without an image;
    # then json.loads fails at the end of the 69-char call: "Expecting ',' delimiter: line 1 column 70 (char 69)"
    _, after_small, after_json = asked(policy, ERRORS)
    assert after_small.messages[-1] == ("user", ["Error: ZOOM IN ARGUMENTS ARE INVALID"], [])
    assert after_json.messages[-1] == ("user", [
        f"Error: Invalid tool call format: {BAD_JSON}. Error: Expecting ',' delimiter: line 1 column 70 (char 69)"
    ], [])  # fmt: skip
    assert sizes(after_json) == [(2996, 1988)]  # neither error made a crop
    # a turn with neither tag ends the rollout: asked once, never generated again
    assert len(asked(policy, ENDS)) == 1
    # zoom right from 2 turns, errors right at its third turn, the ended one never
    assert table == {1: 0.0, 2: 1 / 3, 3: 2 / 3}


def test_the_box_rules_are_the_rollouts_clamp_aspect_and_min_side() -> None:
    rl = get_profile("deepeyes-rl")
    # aspect max(h, w) / min(h, w) <= 100 passes: 3100 / 31 = 100; 3101.5 / 31 = 100.05 is refused
    assert rl.box_on_source((0, 0, 3100, 31), (4000, 4000)) == (0, 0, 3100, 31)
    assert rl.box_on_source((0, 0, 3101.5, 31), (4000, 4000)) == "ZOOM IN ARGUMENTS ARE INVALID"
    # min side 30.5 > 30 passes, Pillow rounds 0.5 -> 0 and 30.5+0 -> 30 (half to even): a 30 px crop
    assert rl.box_on_source((0, 0, 50, 30.5), (100, 100)) == (0, 0, 50, 30)
    # an 8K image: the numbers are applied to the original unscaled (no map from the 4760x2688 view)
    assert rl.box_on_source((476, 269, 952, 538), (7680, 4320)) == (476, 269, 952, 538)
    # clamped to the image, then empty: right = min(100, 500) = 100 is not > left = 200
    assert rl.box_on_source((200, 0, 500, 50), (100, 100)) == "ZOOM IN ARGUMENTS ARE INVALID"
