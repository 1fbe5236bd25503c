"""The `deepeyes` profiles against a loopback policy speaking DeepEyes' V* eval convention, through a real
`minio3 eval --protocol deepeyes`. Every expectation is the release's rule as the reference states it
(peer_conventions.md section 1), worked by hand here: never our own output."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

from loopback_teacher import LoopbackTeacher, RequestView
from PIL import Image
from typer.testing import CliRunner

from cli import app
from minio3_data.profiles import get_profile
from minio3_data.records import ProbeItem, write_items

runner = CliRunner()

USER_PROMPT = (
    "\nThink first, call **image_zoom_in_tool** if needed, then answer. Format strictly as:  <think>...</think>  "
    "<tool_call>...</tool_call> (if tools needed)  <answer>...</answer> "
)
ZOOM, VOID, ABORT = "Is the sign red or blue?", "What animal is on the sign?", "Which way does the arrow point?"
CALL = '<think>Zoom.</think>\n<tool_call>\n{{"name": "image_zoom_in_tool", "arguments": {{"bbox_2d": {box}}}}}\n</tool_call>'


def dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    Image.new("RGB", (3000, 2000), (200, 40, 40)).save(root / "images" / "a.png")
    common = {"width": 3000, "height": 2000}
    write_items(root / "test.parquet", [
        ProbeItem("zoom", "images/a.png", ZOOM, "A", ["red", "blue"], **common),
        ProbeItem("void", "images/a.png", VOID, "B", ["cat", "dog"], **common),
        ProbeItem("abort", "images/a.png", ABORT, "A", ["left", "right"], **common),
    ])  # fmt: skip
    return root


class Policy:
    """Speaks DeepEyes: zooms with absolute pixels, writes a turn without an action once, or a call Pillow
    refuses; records every request it answers."""

    def __init__(self) -> None:
        self.seen: list[RequestView] = []
        self.lock = threading.Lock()

    def __call__(self, view: RequestView) -> str:
        with self.lock:
            self.seen.append(view)
        turns = sum(1 for role, _, _ in view.messages if role == "assistant")
        return self.reply("".join(view.messages[1][1]), turns)

    def reply(self, question: str, turns: int) -> str:
        """The turn for `question` after `turns` assistant turns."""
        if ZOOM in question:
            return CALL.format(box="[1000, 500, 1100.4, 530]") if turns == 0 else "<think>Red.</think><answer>A</answer>"
        if VOID in question:  # the retry sees the same conversation: the policy answers its second request
            asked = sum(1 for v in self.seen if VOID in "".join(v.messages[1][1]))
            return "<think>Hmm, let me look.</think>" if asked == 1 else "<answer>The answer is B. dog</answer>"
        return CALL.format(box="[500, 500, 400, 600]")  # right < left: Pillow raises, the release aborts


def run(tmp_path: Path, *more: str, policy: Policy | None = None) -> tuple[Policy, dict[str, float]]:
    """`minio3 eval --protocol deepeyes` (`more` may name another) at k = 1, budgets 1, 2, 3; Avg@k by budget."""
    data = dataset(tmp_path / "data")
    policy = policy or Policy()
    with LoopbackTeacher(policy) as srv:
        res = runner.invoke(app, [
            "eval", "--dataset", str(data), "--out", str(tmp_path / "run"), "--k", "1", "--max-turns", "1,2,3",
            "--teacher", "openai", "--model", "policy", "--api-key-env", "NONE", "--base-url", srv.openai_url,
            "--max-retries", "0", "--concurrency", "1", "--protocol", "deepeyes", *more,
        ])  # fmt: skip
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    return policy, {int(b): r["avg_at_k"] for b, r in results["groups"]["all"]["by_budget"].items()}


def sizes(view: RequestView) -> list[tuple[int, int]]:
    return [Image.open(io.BytesIO(b)).size for b in view.images()]


def test_a_deepeyes_policy_gets_the_release_crops_turns_and_scores(tmp_path: Path) -> None:
    policy, table = run(tmp_path)
    by_question = {q: [v for v in policy.seen if q in "".join(v.messages[1][1])] for q in (ZOOM, VOID, ABORT)}
    first = by_question[ZOOM][0]
    # system prompt: SYSTEM_PROMPT_V2; user: image, then "Question: ...\nOptions: \nA. red\nB. blue\n" + "\n" + USER_PROMPT_V2
    assert first.messages[0][1] == [get_profile("deepeyes").system_prompt]
    assert first.stop == []  # V*: the server stops only at the end of the turn
    assert "".join(first.messages[1][1]) == f"Question: {ZOOM}\nOptions: \nA. red\nB. blue\n\n{USER_PROMPT}"
    # first view: smart_resize(28, 3136, 12845056) of 3000x2000 = round(107.1)*28 x round(71.4)*28
    assert sizes(first) == [(2996, 1988)]
    # the zoom [1000, 500, 1100.4, 530] on the original, Pillow-rounded: 100x30 -> smart_resize:
    # round(100/28)=4 -> 112, round(30/28)=1 -> 28; 112*28 = 3136 >= min_pixels
    second = by_question[ZOOM][1]
    role, texts, images = second.messages[-1]
    assert role == "user" and len(images) == 1  # text pieces render the same bytes joined as split
    assert texts[0] == "<tool_response>" and "".join(texts[1:]) == USER_PROMPT + "</tool_response>"
    assert sizes(second)[1] == (112, 28)
    # a turn without a call or an answer is not kept, and generated again
    void_requests = by_question[VOID]
    assert len(void_requests) == 2 and [r for r, _, _ in void_requests[1].messages] == ["system", "user"]
    # right < left aborts the episode: one request, no error turn
    assert len(by_question[ABORT]) == 1
    # ours: zoom right at turn 2; void "The answer is B. dog" names no option by our rule; abort never answers
    assert table == {1: 0.0, 2: 1 / 3, 3: 1 / 3}


def test_the_peer_judge_rule_scores_as_the_release_does(tmp_path: Path) -> None:
    _, table = run(tmp_path, "--judge-rule", "peer")
    # DeepEyes' rule: the standard answer "B. dog" appears in "The answer is B. dog": correct, no LLM asked
    assert table == {1: 0.0, 2: 2 / 3, 3: 2 / 3}


def test_hrbench_reproduces_the_coordinate_bug_and_the_fixed_variant_maps_the_box() -> None:
    # 8K: smart_resize(28, max 12845056) of 7680x4320: beta = sqrt(7680*4320/12845056) = 1.6072...;
    # floor(7680/beta/28)*28 = 4760, floor(4320/beta/28)*28 = 2688
    bug, fixed = get_profile("deepeyes-hrbench"), get_profile("deepeyes-hrbench-fixed")
    assert bug.display.first_view_size(7680, 4320) == (4760, 2688)
    assert bug.stop_strings == ("</tool_call>",)
    assert bug.box_on_source((476, 269, 952, 538), (7680, 4320)) == (476, 269, 952, 538)
    # fixed: x * 7680/4760, y * 4320/2688, rounded as Pillow rounds
    assert fixed.box_on_source((476, 269, 952, 538), (7680, 4320)) == (768, 432, 1536, 865)
