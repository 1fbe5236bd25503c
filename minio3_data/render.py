"""One trajectory, several renderings: a neutral conversation, then one renderer per consumer.

`conversation` turns a question and its recorded turns into ChatTurns (text with an `<image>`
placeholder where each image goes, plus the observation indices of those images). The teacher API
request, LLaMA-Factory ShareGPT and the released cold-start parquet row are all rendered from that one
list, so they can never disagree about turn order, numbering or which image goes where.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .profiles import DEFAULT, ProtocolProfile
from .protocol import IMAGE_PLACEHOLDER, source_name
from .records import Trajectory, Turn
from .teachers.base import ImageRef, Message, Part

SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt"}


@dataclass
class ChatTurn:
    role: str  # "system" | "user" | "assistant"
    text: str  # with IMAGE_PLACEHOLDER where each image goes (user turns only)
    images: list[int] = field(default_factory=list)  # observation indices, in placeholder order


def conversation(
    question: str,
    options: Sequence[str],
    turns: Sequence[Turn],
    *,
    protocol: ProtocolProfile = DEFAULT,
) -> list[ChatTurn]:
    """System, question with the first view, then each assistant turn and what the environment answered,
    in the words of `protocol`.

    After a zoom that produced observation k: the observation turn with image k. After a malformed turn
    or an invalid zoom: the error turn (none where the profile ends the trajectory there). A void turn the
    profile generates again is left out. Nothing after an answer, a void turn or an unexecuted (over-turn)
    zoom. A stray placeholder in the question is dropped so the image count stays right.
    """
    profile = protocol
    asked = profile.question_turn(question.replace(IMAGE_PLACEHOLDER, "").strip(), options)
    chat = [ChatTurn("system", profile.system_prompt), ChatTurn("user", asked, [0])]
    for i, turn in enumerate(turns):
        if turn.action == "void" and profile.void_retries:
            continue  # generated again: the release never shows it to the model
        chat.append(ChatTurn("assistant", turn.text))
        if turn.observation is not None:
            shown = profile.observation_text(i, turn.observation, size=_shown_size(profile, turn))
            chat.append(ChatTurn("user", shown, [turn.observation]))
        elif turn.error is not None and not profile.refusal_ends:
            chat.append(ChatTurn("user", profile.error_text(turn.error)))
    return chat


def _shown_size(profile: ProtocolProfile, turn: Turn) -> tuple[int, int]:
    """The displayed size of a zoom's crop, for an observation text that names it ((0, 0) without a box)."""
    if not turn.box_px:
        return 0, 0
    x0, y0, x1, y1 = turn.box_px
    return profile.display.crop_size(x1 - x0, y1 - y0)


def _parts(turn: ChatTurn, images: Sequence[ImageRef]) -> list[Part]:
    if not turn.images:
        return [turn.text]  # verbatim: a teacher may write "<image>" in its own prose
    pieces = turn.text.split(IMAGE_PLACEHOLDER)
    if len(pieces) != len(turn.images) + 1:
        raise ValueError(
            f"{turn.role} turn has {len(pieces) - 1} placeholder(s) for {len(turn.images)} image(s)"
        )
    parts: list[Part] = []
    for piece, index in zip(pieces, [*turn.images, None]):
        if piece:
            parts.append(piece)
        if index is not None:
            if index >= len(images):
                raise ValueError(f"observation {index} has no image; {len(images)} given")
            parts.append(images[index])
    return parts


def to_teacher_messages(chat: Sequence[ChatTurn], images: Sequence[ImageRef]) -> list[Message]:
    """Chat messages for a teacher API; `images` are indexed by observation index."""
    return [Message(turn.role, _parts(turn, images)) for turn in chat]  # type: ignore[arg-type]


def _image_order(chat: Sequence[ChatTurn]) -> list[int]:
    return [index for turn in chat for index in turn.images]


def to_sharegpt(chat: Sequence[ChatTurn], image_paths: Sequence[str]) -> dict[str, Any]:
    """A LLaMA-Factory ShareGPT record; `image_paths` are indexed by observation index and listed in
    placeholder order (the exporter validates counts and alternation before writing)."""
    return {
        "conversations": [{"from": SHAREGPT_ROLES[turn.role], "value": turn.text} for turn in chat],
        "images": [image_paths[index] for index in _image_order(chat)],
    }


def image_name(index: int) -> str:
    """File name of an observation in the released layout: original_image.jpg, observation_k.jpg."""
    return f"{source_name(index)}.jpg"


def to_released_row(
    traj: Trajectory, chat: Sequence[ChatTurn], image_bytes: Sequence[bytes], *, data_source: str = "minio3"
) -> dict[str, Any]:
    """One row in the shape of the released Mini-o3-Coldstart parquet (read by its preprocess script).

    `image_bytes` are indexed by observation index. The released `sample_index`/`rollout_index` become
    our item id and sample index.
    """
    names = [image_name(i) for i in range(len(image_bytes))]
    record = to_sharegpt(chat, names)
    order = _image_order(chat)
    return {
        "conversations": json.dumps(record["conversations"], ensure_ascii=False),
        "images": [{"bytes": image_bytes[i], "path": names[i]} for i in order],
        "image_names": record["images"],
        "data_source": data_source,
        "sample_index": traj.item_id,
        "rollout_index": traj.sample_index,
    }
