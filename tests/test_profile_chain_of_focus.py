"""The `chain-of-focus` profile against a loopback policy speaking Chain-of-Focus' V* eval convention through a
real `minio3 eval --protocol chain-of-focus`. Expectations are the release's arithmetic from the reference
(peer_conventions.md section 4), worked by hand."""

from __future__ import annotations

import io
import json
from pathlib import Path

from loopback_teacher import LoopbackTeacher, RequestView
from PIL import Image
from typer.testing import CliRunner

from cli import app
from minio3_data.records import ProbeItem, write_items

runner = CliRunner()

USER_PROMPT = (
    "\nThink in the mind first, and then decide whether to call tools one or more times OR provide final answer. "
    "Format strictly as: <think>...</think> <tool_call>...</tool_call> <tool_call>...</tool_call> (if any tools "
    "needed) OR <answer>...</answer> (if no tools needed)."
)
QUESTION = "What colour is the car?"
CALLS = ('{"name":"image_zoom_in_tool","arguments":{"bbox_2d":[100, 100, 200, 140]}}',
         '{"name":"image_zoom_in_tool","arguments":{"bbox_2d":[900, 0, 1100, 50]}}')  # x1 > W: invalid


def policy(seen: list[RequestView]):
    def reply(view: RequestView) -> str:
        seen.append(view)
        turn = sum(1 for role, _, _ in view.messages if role == "assistant")
        if turn < len(CALLS):
            return f"<think>Look closer.</think> <tool_call>{CALLS[turn]}</tool_call>"
        return "<think>Blue.</think> <answer>(B) blue</answer>"
    return reply


def test_a_cof_policy_gets_the_release_crops_and_scores(tmp_path: Path) -> None:
    (tmp_path / "data" / "images").mkdir(parents=True)
    Image.new("RGB", (1000, 800), (40, 40, 200)).save(tmp_path / "data" / "images" / "a.png")
    write_items(tmp_path / "data" / "test.parquet",
                [ProbeItem("car", "images/a.png", QUESTION, "B", ["red", "blue"], width=1000, height=800)])
    seen: list[RequestView] = []
    with LoopbackTeacher(policy(seen)) as srv:
        res = runner.invoke(app, [
            "eval", "--dataset", str(tmp_path / "data"), "--out", str(tmp_path / "run"), "--k", "1",
            "--max-turns", "2,3", "--teacher", "openai", "--model", "policy", "--api-key-env", "NONE",
            "--base-url", srv.openai_url, "--max-retries", "0", "--protocol", "chain-of-focus",
        ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "".join(seen[0].messages[1][1]) == f"Question: {QUESTION}\n(A) red\n(B) blue{USER_PROMPT}"
    last = seen[-1]
    shown = [Image.open(io.BytesIO(b)).size for b in last.images()]
    # first view: smart_resize(28, 112^2, 3840^2) of 1000x800: round(35.7)*28 = 1008, round(28.6)*28 = 812
    # zoom 1: [100,100,200,140] x1.5 about (150,120): [75,90,225,150] = 150x60, doubled 300x120 -> 308x112
    # zoom 2: x1 = 1100 > 1008: the whole first view, doubled 2016x1624 -> smart_resize keeps it
    assert shown == [(1008, 812), (308, 112), (2016, 1624)]
    observation = last.messages[3]
    assert observation[0] == "user" and "".join(observation[1]) == USER_PROMPT and len(observation[2]) == 1
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    table = {int(b): r["avg_at_k"] for b, r in results["groups"]["all"]["by_budget"].items()}
    assert table == {2: 0.0, 3: 1.0}  # "(B) blue" names option B by our rule, on the third turn
