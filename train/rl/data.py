"""A dataset dir (build-visualprobe) as verl 0.9.1 RL parquet: one row per question, in the protocol's words.

verl's `RLHFDataset` (verl/utils/dataset/rl_dataset.py) reads, per row:
  - `prompt`: the chat messages; `<image>` in a message's text is where `images[k]` goes (`_build_messages`);
  - `images`: one dict per placeholder, passed on as `{"type": "image", **dict}`, which qwen-vl-utils reads:
    `image` (a path) and `resized_width`/`resized_height` (rounded by it to multiples of 28);
  - `data_source` (the reward's `data_source`, and how validation metrics are grouped),
    `reward_model.ground_truth` (the reward's `ground_truth`), `extra_info` (given whole to the agent loop
    and, merged with the loop's extra fields, to the reward), and `agent_name` (which registered loop runs it).

The prompt is `render.conversation` of the question with no turns yet — the same system prompt and first
user turn (`<image>\\n` + `protocol.question_text`) that synthesis and the SFT export render. The image is the
full-resolution original, shown at the protocol's first-view size (`display.first_view_size`), the size our
SFT export's first image reaches LLaMA-Factory at. `extra_info` carries what the rollout needs and the
metrics group by (keys in `ExtraInfo`): the original's absolute path (every crop is cut from it), the
protocol, and the turn and image budgets (train and validation differ: 6 and 12 turns by default).

Rows that break the row rules (`minio3_data.row_rules`), or whose image is missing or not the size the row
says, are skipped and listed in `excluded.jsonl` (stage, split, id, reason, detail), never dropped silently.
Image paths are absolute: every node of a multi-node run must see the dataset at the same path.
qwen-vl-utils opens `images` without applying an EXIF rotation, and verl uses it for the first view unless
the rollout makes its own: the agent loop shows ZoomEnv's first view (EXIF applied, the protocol's pixels).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from minio3_data.arrow_schema import arrow_schema
from minio3_data.display import first_view_size
from minio3_data.errors import BadInputError
from minio3_data.fsutil import atomic_write_text, safe_relpath
from minio3_data.images import image_size
from minio3_data.profiles import DEFAULT_PROFILE, get_profile
from minio3_data.records import ProbeItem, read_items, write_parquet
from minio3_data.render import conversation
from minio3_data.row_rules import row_name, row_problems

SPLITS = {"train": "train.parquet", "val": "test.parquet"}  # our split -> the dataset dir's file
EXCLUDED_NAME = "excluded.jsonl"
STAGE = "train-rl"
TRAIN_MAX_TURNS = 6  # the released run: max_generation_round=6 in training, 12 in validation
VAL_MAX_TURNS = 12
MAX_IMAGES = 12  # the released limit_mm_per_prompt, first view included (train and validation)
# verl splits prompt text on these too: a question holding one breaks its image count
VERL_PLACEHOLDERS = ("<video>", "<audio>")


@dataclass
class Message:
    role: str
    content: str


@dataclass
class ImageRef:
    image: str  # absolute path of the full-resolution original
    resized_width: int  # the protocol's first-view size
    resized_height: int


@dataclass
class RewardModel:
    ground_truth: str
    style: str = "rule"


@dataclass
class ExtraInfo:
    """What the agent loop and the reward read from a row (verl hands `extra_info` to both)."""

    index: int  # position in its split (verl reads extra_info.index)
    split: str  # train | val
    item_id: str
    question: str  # the canonical question, without options (an LLM judge reads it)
    options: list[str]
    difficulty: str
    source: str  # synthetic / coco / official / ...
    image_path: str  # the full-resolution original, absolute: every crop is cut from it
    width: int
    height: int
    protocol: str  # the profile every turn is read and rendered in
    max_turns: int  # assistant turns allowed; a zoom at the last one is over-turn
    max_images: int  # images allowed in context, first view included


@dataclass
class VerlRow:
    data_source: str  # "<source>/<difficulty>": verl reports validation reward per data source
    prompt: list[Message]
    images: list[ImageRef]
    ability: str
    reward_model: RewardModel
    extra_info: ExtraInfo
    agent_name: str


VERL_ROW_SCHEMA = arrow_schema(VerlRow)


@dataclass
class RlData:
    """What was written: the parquet per split, the rows in each, and one line per skipped row."""

    files: dict[str, str]
    rows: dict[str, int]
    skipped: list[str] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> count

    def skipped_line(self) -> str | None:
        if not self.skipped:
            return None
        more = f" (and {len(self.skipped) - 1} more; all in {EXCLUDED_NAME})" if len(self.skipped) > 1 else ""
        return f"skipped {len(self.skipped)} dataset row(s): {self.skipped[0]}{more}"


@dataclass(frozen=True)
class Budget:
    max_turns: int
    max_images: int = MAX_IMAGES


def verl_row(item: ProbeItem, original: Path, split: str, index: int, protocol: str, budget: Budget,
             agent_name: str) -> VerlRow:  # fmt: skip
    """One question as verl reads it; `original` is its image file, already checked."""
    profile = get_profile(protocol)
    chat = conversation(item.question, item.options, [], protocol=profile)
    width, height = first_view_size(item.width, item.height, mode=profile.resize)
    return VerlRow(
        data_source=f"{item.source}/{item.difficulty}",
        prompt=[Message(turn.role, turn.text) for turn in chat],
        images=[ImageRef(str(original), width, height)],
        ability="visual_search",
        reward_model=RewardModel(item.answer),
        extra_info=ExtraInfo(
            index=index, split=split, item_id=item.id, question=item.question, options=list(item.options),
            difficulty=item.difficulty, source=item.source, image_path=str(original), width=item.width,
            height=item.height, protocol=profile.name, max_turns=budget.max_turns, max_images=budget.max_images,
        ),
        agent_name=agent_name,
    )  # fmt: skip


def _problems(dataset: Path, item: ProbeItem, protocol: str) -> tuple[Path | None, str, list[str]]:
    """The item's original, and the reason and problems that keep the row out (no problems: it is usable)."""
    try:
        original = safe_relpath(dataset, item.image, "image")
        size = image_size(original)
    except BadInputError as e:  # ImageError included: missing, unreadable, a bomb
        return None, "bad_image", [str(e)]
    problems = row_problems(item, size)
    if not problems:
        try:
            first_view_size(item.width, item.height, mode=get_profile(protocol).resize)
        except ValueError as e:
            problems.append(str(e))
    text = "".join([item.question, *item.options])
    problems += [f"question holds {p!r}, which verl reads as a media placeholder" for p in VERL_PLACEHOLDERS
                 if p in text]  # fmt: skip
    return original, "no_answer" if "answer: empty" in problems else "bad_row", problems


def split_rows(dataset: Path, split: str, protocol: str, budget: Budget, agent_name: str,
               excluded: list[dict[str, str]]) -> list[VerlRow]:  # fmt: skip
    """The usable rows of one split as verl rows; each unusable one appended to `excluded`."""
    path = dataset / SPLITS[split]
    items = read_items(path)
    rows: list[VerlRow] = []
    for k, item in enumerate(items):
        original, reason, problems = _problems(dataset, item, protocol)
        if problems or original is None:
            excluded.append({"stage": STAGE, "split": split, "id": row_name(item, k), "reason": reason,
                             "detail": "; ".join(problems)})  # fmt: skip
            continue
        rows.append(verl_row(item, original, split, len(rows), protocol, budget, agent_name))
    if not rows:
        if items and all(e["reason"] == "no_answer" for e in excluded if e["split"] == split):
            raise BadInputError(f"{path}: no row has a target answer; train-rl rewards answers against it")
        first = next((e for e in excluded if e["split"] == split), None)
        why = f"every row was skipped, e.g. {first['id']}: {first['detail']}" if first else "it has no rows"
        raise BadInputError(f"{path}: no usable question ({why})")
    return rows


def write_rl_data(dataset: str | os.PathLike, out: str | os.PathLike, *, protocol: str = DEFAULT_PROFILE,
                  max_turns: int = TRAIN_MAX_TURNS, val_max_turns: int = VAL_MAX_TURNS,
                  max_images: int = MAX_IMAGES, agent_name: str) -> RlData:  # fmt: skip
    """Write `out`/train.parquet and `out`/val.parquet (from the dataset's train and test splits) and
    `out`/excluded.jsonl; each file is replaced atomically."""
    for name, value in (
        ("--max-turns", max_turns),
        ("--val-max-turns", val_max_turns),
        ("max images", max_images),
    ):
        if value < 1:
            raise BadInputError(f"{name} {value}: must be at least 1")
    dataset, out = Path(dataset).resolve(), Path(out)
    if not dataset.is_dir():
        raise BadInputError(
            f"--dataset {dataset}: not a directory (expected a dataset dir from build-visualprobe)"
        )
    budgets = {"train": Budget(max_turns, max_images), "val": Budget(val_max_turns, max_images)}
    excluded: list[dict[str, str]] = []
    tables = {s: split_rows(dataset, s, protocol, budgets[s], agent_name, excluded) for s in SPLITS}
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, rows in tables.items():
        files[split] = str(out / f"{split}.parquet")
        write_parquet(files[split], [asdict(r) for r in rows], VERL_ROW_SCHEMA)
    atomic_write_text(
        out / EXCLUDED_NAME, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in excluded)
    )
    return RlData(
        files=files, rows={s: len(r) for s, r in tables.items()},
        skipped=[f"{e['split']} {e['id']}: {e['detail']}" for e in excluded],
        excluded=dict(Counter(e["reason"] for e in excluded)),
    )  # fmt: skip


__all__ = ["EXCLUDED_NAME", "VERL_ROW_SCHEMA", "ExtraInfo", "RlData", "VerlRow", "verl_row", "write_rl_data"]
