"""A turn cut where the response budget ends, right after a tool image — verl's image-token trap — through verl's
REAL agent-loop worker on CPU (tests/rl_stand_ins.py stands in for the LLM server and the processor factory).

verl cuts a response that runs past `response_length` to that length (AgentLoopWorker postprocessing), and
the training forward pass needs every image's `<|image_pad|>` tokens to match its features: a cut through an
image, or an image dropped from the data while its tokens stay (or the reverse), fails only on the GPUs, at
the first update ("Image features and image tokens do not match"). So, for a zoom then a turn that does not
finish, with the budget ending exactly where that turn's text ends, one token past the tool image, inside the
turn, and exactly where the tool turn (with its image) would end:

  - the trajectory is an over-turn (it ran out of context) and its whole response is masked;
  - the stored response is exactly the budget long;
  - every image in the data has all its tokens in the sequence, and every image span in the sequence has
    its image: `<|image_pad|>` count = Σ t·h·w / merge², one `<|vision_start|>` per image.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_rl_agent_loop import A, field, rl, rollout, setup, zoom  # noqa: F401 (rl, setup: fixtures)

QUESTION = "Case budget-cut: what colour is the sign?"
THINKING = "<think>" + " ".join(["the sign is small, blue or green, and far"] * 12)  # cut: never ends its turn


def turn_lengths(rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[int, int, int]:
    """(zoom turn, tool turn with its image, cut turn) token counts, from a run with room to spare."""
    scripts = {QUESTION: [zoom(A), rl.Unfinished(THINKING)]}
    out, _, _, index = rollout(rl, setup, monkeypatch, [QUESTION], scripts=scripts, response_length=4096)
    runs = rl.runs(rl.response_mask(out, index[QUESTION]))
    assert [value for value, _ in runs] == [1, 0, 1], runs
    return runs[0][1], runs[1][1], runs[2][1]


def image_tokens_match(rl: Any, out: Any, worker: Any, i: int) -> tuple[int, int, int]:
    """(images in the data, vision spans in the sequence, image-pad tokens minus what the images need)."""
    ids = rl.sequence_ids(out, i)
    grid = rl.grid(out, i)
    merge = worker.processor.image_processor.merge_size
    pad = worker.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    start = worker.tokenizer.convert_tokens_to_ids("<|vision_start|>")
    return len(grid), ids.count(start), ids.count(pad) - int(grid.prod(-1).sum()) // merge**2


@pytest.mark.parametrize(
    "cut,images",
    [
        ("at the end of the cut turn's text", 2),
        ("one token past the tool image", 2),
        ("inside the cut turn", 2),
        ("where the tool turn would end", 1),  # verl drops a tool turn that reaches the budget, image and all
    ],
)
def test_a_turn_cut_at_the_budget_after_a_tool_image(
    rl: Any, setup: dict[str, Any], monkeypatch: pytest.MonkeyPatch, cut: str, images: int
) -> None:
    zoom_turn, tool_turn, cut_turn = turn_lengths(rl, setup, monkeypatch)
    budget = {
        "at the end of the cut turn's text": zoom_turn + tool_turn + cut_turn,
        "one token past the tool image": zoom_turn + tool_turn + 1,
        "inside the cut turn": zoom_turn + tool_turn + cut_turn // 2,
        "where the tool turn would end": zoom_turn + tool_turn,
    }[cut]
    scripts = {QUESTION: [zoom(A), rl.Unfinished(THINKING)]}
    out, server, worker, index = rollout(rl, setup, monkeypatch, [QUESTION], scripts=scripts, response_length=budget)
    i = index[QUESTION]
    mask = rl.response_mask(out, i)
    assert (field(out, "overturn", i), field(out, "overturn_reason", i)) == (True, "context")
    assert len(mask) == (budget if images == 2 else zoom_turn) and set(mask) == {0}
    assert image_tokens_match(rl, out, worker, i) == (images, images, 0)
    assert len(server.images(QUESTION)) == images  # what the policy saw is what it is trained on
