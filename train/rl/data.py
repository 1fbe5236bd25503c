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
full-resolution original, shown at the protocol's first-view size (its display rule), the size our
SFT export's first image reaches LLaMA-Factory at. `extra_info` carries what the rollout needs and the
metrics group by (keys in `ExtraInfo`): the original's absolute path (every crop is cut from it), the
protocol, and the turn and image budgets (budgets.py: train and validation differ).

Rows that break the row rules (`minio3_data.row_rules`), or whose image is missing or not the size the row
says, are skipped and listed in `excluded.jsonl` (minio3_data.exclusions), never dropped silently.
Image paths are absolute: every node of a multi-node run must see the dataset at the same path.
qwen-vl-utils opens `images` without applying an EXIF rotation, and verl uses it for the first view unless
the rollout makes its own: the agent loop shows ZoomEnv's first view (EXIF applied, the protocol's pixels).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from minio3_data.arrow_schema import arrow_schema
from minio3_data.errors import BadInputError
from minio3_data.exclusions import Exclusion, exclusion_line, write_exclusions
from minio3_data.fsutil import safe_relpath
from minio3_data.images import image_size
from minio3_data.profiles import DEFAULT, ProtocolProfile
from minio3_data.records import ProbeItem, read_items, write_parquet
from minio3_data.render import conversation
from minio3_data.row_rules import row_id, row_problems, row_reason

from .budgets import MAX_IMAGES, TRAIN_MAX_TURNS, VAL_MAX_TURNS, TurnBudget

SPLITS = {"train": "train.parquet", "val": "test.parquet"}  # our split -> the dataset dir's file
STAGE = "train-rl"
NO_ANSWER = "empty answer"  # the row reason of a question with nothing to reward against
# verl splits prompt text on these too: a question holding one breaks its image count
VERL_PLACEHOLDERS = ("<video>", "<audio>")


@dataclass
class PromptMessage:
    role: str
    content: str


@dataclass
class RowImage:
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
    prompt: list[PromptMessage]
    images: list[RowImage]
    ability: str
    reward_model: RewardModel
    extra_info: ExtraInfo
    agent_name: str


VERL_ROW_SCHEMA = arrow_schema(VerlRow)


@dataclass
class RlData:
    """What was written: the parquet per split, the rows in each, and the rows left out (excluded.jsonl)."""

    files: dict[str, str]
    rows: dict[str, int]
    excluded: list[Exclusion] = field(default_factory=list)
    excluded_file: str = ""

    def exclusion_line(self) -> str | None:
        return exclusion_line(self.excluded, self.excluded_file)


def verl_row(item: ProbeItem, original: Path, split: str, index: int, profile: ProtocolProfile, budget: TurnBudget,
             agent_name: str) -> VerlRow:  # fmt: skip
    """One question as verl reads it; `original` is its image file, already checked."""
    chat = conversation(item.question, item.options, [], protocol=profile)
    width, height = profile.display.first_view_size(item.width, item.height)
    return VerlRow(
        data_source=f"{item.source}/{item.difficulty}",
        prompt=[PromptMessage(turn.role, turn.text) for turn in chat],
        images=[RowImage(str(original), width, height)],
        ability="visual_search",
        reward_model=RewardModel(item.answer),
        extra_info=ExtraInfo(
            index=index, split=split, item_id=item.id, question=item.question, options=list(item.options),
            difficulty=item.difficulty, source=item.source, image_path=str(original), width=item.width,
            height=item.height, protocol=profile.name, max_turns=budget.max_turns, max_images=budget.max_images,
        ),
        agent_name=agent_name,
    )  # fmt: skip


def _problems(dataset: Path, item: ProbeItem, profile: ProtocolProfile) -> tuple[Path | None, str, list[str]]:
    """The item's original, and the reason and problems that keep the row out (no problems: it is usable)."""
    try:
        original = safe_relpath(dataset, item.image, "image")
        size = image_size(original)
    except BadInputError as e:  # ImageError included: missing, unreadable, a bomb
        return None, "bad image", [str(e)]
    problems = row_problems(item, size)
    if not problems:
        try:
            profile.display.first_view_size(item.width, item.height)
        except ValueError as e:
            problems.append(str(e))
    text = "".join([item.question, *item.options])
    problems += [f"question holds {p!r}, which verl reads as a media placeholder" for p in VERL_PLACEHOLDERS
                 if p in text]  # fmt: skip
    if not problems:
        return original, "", problems
    return original, NO_ANSWER if "answer: empty" in problems else row_reason(problems), problems


def split_rows(dataset: Path, split: str, profile: ProtocolProfile, budget: TurnBudget, agent_name: str,
               excluded: list[Exclusion]) -> list[VerlRow]:  # fmt: skip
    """The usable rows of one split as verl rows; each unusable one appended to `excluded`."""
    path = dataset / SPLITS[split]
    items = read_items(path)
    rows: list[VerlRow] = []
    for k, item in enumerate(items):
        original, reason, problems = _problems(dataset, item, profile)
        if problems or original is None:
            excluded.append(Exclusion(STAGE, row_id(item, k), reason, "; ".join(problems), split=split))
            continue
        rows.append(verl_row(item, original, split, len(rows), profile, budget, agent_name))
    if not rows:
        if items and all(e.reason == NO_ANSWER for e in excluded if e.split == split):
            raise BadInputError(f"{path}: no row has a target answer; train-rl rewards answers against it")
        first = next((e for e in excluded if e.split == split), None)
        why = f"every row was skipped, e.g. {first.id}: {first.detail}" if first else "it has no rows"
        raise BadInputError(f"{path}: no usable question ({why})")
    return rows


def write_rl_data(dataset: str | os.PathLike, out: str | os.PathLike, *, protocol: ProtocolProfile = DEFAULT,
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
    budgets = {"train": TurnBudget(max_turns, max_images), "val": TurnBudget(val_max_turns, max_images)}
    excluded: list[Exclusion] = []
    tables = {s: split_rows(dataset, s, protocol, budgets[s], agent_name, excluded) for s in SPLITS}
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, rows in tables.items():
        files[split] = str(out / f"{split}.parquet")
        write_parquet(files[split], [asdict(r) for r in rows], VERL_ROW_SCHEMA)
    listed = write_exclusions(out, excluded)
    rows = {s: len(r) for s, r in tables.items()}
    return RlData(files=files, rows=rows, excluded=excluded, excluded_file=str(listed))


__all__ = ["VERL_ROW_SCHEMA", "ExtraInfo", "RlData", "VerlRow", "verl_row", "write_rl_data"]
