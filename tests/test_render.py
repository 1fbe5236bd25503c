"""One trajectory, several renderings: they agree on order, numbering and which image goes where."""

from __future__ import annotations

import json

from minio3_data.profiles import get_profile
from minio3_data.profiles.minio3 import SYSTEM_PROMPT
from minio3_data.protocol import IMAGE_PLACEHOLDER, Answer, Zoom, question_text, render_turn
from minio3_data.records import Trajectory, Turn, Verdict
from minio3_data.render import ChatTurn, conversation, to_released_row, to_sharegpt, to_teacher_messages
from minio3_data.teachers.base import ImageRef

MINIO3 = get_profile("minio3")
error_text, observation_text = MINIO3.error_text, MINIO3.observation_text

Z1 = render_turn("Too small; zoom on the shop fronts.", Zoom((0.1, 0.2, 0.5, 0.6)))
BAD = "<think>zoom</think><grounding>{bbox: oops}</grounding>"
Z2 = render_turn("The sign is in the lower half.", Zoom((0.0, 0.5, 0.5, 1.0), "observation_1"))
ANS = render_turn("It reads OPEN.", Answer("B"))

TURNS = [
    Turn(
        Z1,
        "zoom",
        bbox=[0.1, 0.2, 0.5, 0.6],
        source="original_image",
        box_px=[100, 200, 500, 600],
        observation=1,
    ),
    Turn(BAD, "malformed", error="cannot read the grounding"),
    Turn(
        Z2,
        "zoom",
        bbox=[0.0, 0.5, 0.5, 1.0],
        source="observation_1",
        box_px=[100, 400, 300, 600],
        observation=2,
    ),
    Turn(ANS, "answer", answer="B"),
]


def make_trajectory(turns: list[Turn]) -> Trajectory:
    return Trajectory(
        id="item-7#2", item_id="item-7", sample_index=2, teacher="scripted:dfs", exemplar_ids=[],
        question="What does the sign say?", options=["CLOSED", "OPEN"], ground_truth="B", image="images/7.jpg",
        width=1000, height=1000, difficulty="hard", turns=turns, final_answer="B", verdict=Verdict("correct", "rule"),
        status="answered", num_turns=len(turns),
    )  # fmt: skip


def test_conversation_layout() -> None:
    chat = conversation("What does the sign say?", ["CLOSED", "OPEN"], TURNS, protocol=MINIO3)
    assert [(t.role, t.images) for t in chat] == [
        ("system", []),
        ("user", [0]),
        ("assistant", []),
        ("user", [1]),
        ("assistant", []),
        ("user", []),
        ("assistant", []),
        ("user", [2]),
        ("assistant", []),
    ]
    assert chat[0].text == SYSTEM_PROMPT
    assert chat[1].text == IMAGE_PLACEHOLDER + "\n" + question_text(
        "What does the sign say?", ["CLOSED", "OPEN"]
    )
    assert chat[3].text == observation_text(0, 1)
    assert chat[5].text == error_text("cannot read the grounding")
    # numbering does not drift after the error turn: Action 2 produced Observation 2
    assert chat[7].text == observation_text(2, 2)
    assert [t.text for t in chat if t.role == "assistant"] == [Z1, BAD, Z2, ANS]


def test_over_turn_ends_with_the_unexecuted_zoom_and_continuing_runs_end_with_the_reply() -> None:
    over = [TURNS[0], Turn(Z2, "zoom", bbox=[0.0, 0.5, 0.5, 1.0], source="observation_1")]
    chat = conversation("q", [], over, protocol=MINIO3)
    assert chat[-1].role == "assistant" and chat[-1].text == Z2
    # mid-run (what the synthesis loop sends): the last zoom's observation is the last user turn
    chat = conversation("q", [], TURNS[:1], protocol=MINIO3)
    assert chat[-1].role == "user" and chat[-1].images == [1]
    assert conversation("q", [], TURNS[:2], protocol=MINIO3)[-1].text == error_text("cannot read the grounding")


def test_stray_placeholder_in_question_is_not_doubled() -> None:
    chat = conversation("<image>\nWhat does the sign say?", [], [])
    assert chat[1].text.count(IMAGE_PLACEHOLDER) == 1 and chat[1].text.endswith("What does the sign say?")


def refs(n: int) -> list[ImageRef]:
    return [ImageRef(f"img{i}".encode(), width=10 + i, height=10) for i in range(n)]


def test_teacher_messages_put_images_where_the_placeholders_are() -> None:
    images = refs(3)
    messages = to_teacher_messages(conversation("What does the sign say?", [], TURNS, protocol=MINIO3), images)
    assert [m.role for m in messages][:3] == ["system", "user", "assistant"]
    assert messages[1].parts[0] is images[0] and messages[1].parts[1] == "\nWhat does the sign say?"
    obs = messages[3]
    assert len(obs.parts) == 3 and obs.parts[1] is images[1]
    assert obs.text == observation_text(0, 1).replace(IMAGE_PLACEHOLDER, "")
    assert messages[7].images == [images[2]]
    assert [im for m in messages for im in m.images] == images
    # a teacher's own prose may contain the literal placeholder: sent verbatim, no image
    odd = Turn("<think>the <image> shows a street</think><answer>A</answer>", "answer", answer="A")
    last = to_teacher_messages(conversation("q", [], [odd]), images)[-1]
    assert last.parts == [odd.text]


def test_sharegpt_images_in_placeholder_order() -> None:
    chat = conversation("What does the sign say?", ["CLOSED", "OPEN"], TURNS, protocol=MINIO3)
    record = to_sharegpt(chat, ["orig.jpg", "o1.jpg", "o2.jpg"])
    roles = [m["from"] for m in record["conversations"]]
    assert roles == ["system", "human", "gpt", "human", "gpt", "human", "gpt", "human", "gpt"]
    assert record["images"] == ["orig.jpg", "o1.jpg", "o2.jpg"]
    count = sum(m["value"].count(IMAGE_PLACEHOLDER) for m in record["conversations"])
    assert count == len(record["images"])
    # an observation re-shown later appears again, in order
    chat.append(ChatTurn("user", f"again {IMAGE_PLACEHOLDER}", [1]))
    assert to_sharegpt(chat, ["a", "b", "c"])["images"] == ["a", "b", "c", "b"]


def test_released_row_shape() -> None:
    traj = make_trajectory(TURNS)
    chat = conversation(traj.question, traj.options, traj.turns)
    row = to_released_row(traj, chat, [b"o0", b"o1", b"o2"])
    assert set(row) == {
        "conversations",
        "images",
        "image_names",
        "data_source",
        "sample_index",
        "rollout_index",
    }
    conv = json.loads(row["conversations"])
    assert conv == to_sharegpt(chat, ["x", "y", "z"])["conversations"]
    assert row["image_names"] == ["original_image.jpg", "observation_1.jpg", "observation_2.jpg"]
    assert row["images"] == [
        {"bytes": b"o0", "path": "original_image.jpg"},
        {"bytes": b"o1", "path": "observation_1.jpg"},
        {"bytes": b"o2", "path": "observation_2.jpg"},
    ]
    assert (row["sample_index"], row["rollout_index"]) == ("item-7", 2)
