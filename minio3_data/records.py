"""The records every stage exchanges: ProbeItem (a dataset row), Turn and Trajectory (a teacher attempt).

Trajectories store actions, not pixels (DESIGN invariant 2): a zoom turn records its relative bbox and
source; crops are re-derived with ZoomEnv whenever pixels are needed.
Each record's Arrow schema is derived from its fields (arrow_schema.py), so parquet files written by any
stage load with `datasets.load_dataset("parquet", data_files=...)`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from .arrow_schema import arrow_schema, readable_as
from .errors import BadInputError
from .fsutil import atomic_path

DIFFICULTIES: tuple[str, ...] = ("easy", "medium", "hard")

ActionKind = Literal["zoom", "answer", "malformed", "void"]  # void: no action, ends the trajectory (released)
Status = Literal["answered", "over_turn", "malformed", "void", "failed"]
VerdictLabel = Literal["correct", "wrong", "unjudged"]


def field_values(record: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, one level deep, values shared rather than copied."""
    return {f.name: getattr(record, f.name) for f in fields(record)}


@dataclass
class ProbeItem:
    """One question of a dataset dir (train.parquet / test.parquet)."""

    id: str
    image: str  # relative to the dataset dir, never absolute, never escaping it
    question: str  # canonical question text, without any <image> placeholder
    answer: str  # ground truth; the option letter for multiple choice
    options: list[str] = field(default_factory=list)
    difficulty: str = "medium"
    target_bbox: list[float] | None = None  # xyxy in original pixels
    width: int = 0
    height: int = 0
    source: str = "synthetic"
    kind: str = ""  # question kind (attribute, text, count, position, category, ...)
    # rows asking one question several ways (HR-Bench's option-cycled copies) share it, and evaluation scores
    # them as one question; "" (most rows): the row is a question of its own
    question_group: str = ""
    # each target's box in original pixels (several for count and relative-position questions), whose union
    # is target_bbox; the difficulty rule sizes the smallest. Empty where a source gives only the union
    target_boxes: list[list[float]] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        return field_values(self)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ProbeItem:
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in row.items() if k in names}
        kw["options"] = list(kw.get("options") or [])
        if kw.get("target_bbox") is not None:  # ints become floats; anything else is left for the row rules
            kw["target_bbox"] = [float(v) if isinstance(v, (int, float)) else v for v in kw["target_bbox"]]
        return cls(**kw)


PROBE_SCHEMA = arrow_schema(ProbeItem)


@dataclass
class Usage:
    """Tokens and money one attempt (or one request) consumed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    thought_tokens: int = 0
    requests: int = 0
    cost_usd: float = 0.0

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.thought_tokens += other.thought_tokens
        self.requests += other.requests
        self.cost_usd += other.cost_usd

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens + self.thought_tokens


@dataclass
class Turn:
    """One assistant turn and what the environment made of it.

    `bbox` is relative (0-1) to `source`; `box_px` is the composed integer box on the original image
    (None for answers, malformed turns and invalid zooms); `error` is the message the model was shown.
    """

    text: str
    action: ActionKind
    bbox: list[float] | None = None
    source: str | None = None
    box_px: list[int] | None = None
    observation: int | None = None  # index of the observation this zoom produced (1-based)
    error: str | None = None
    answer: str | None = None


@dataclass
class Verdict:
    label: VerdictLabel = "unjudged"
    how: str = ""  # "rule", "openai:gpt-4o", ... plus a short reason

    @property
    def correct(self) -> bool:
        return self.label == "correct"


@dataclass
class Trajectory:
    """One finished attempt of a teacher on one item (one line of attempts.jsonl)."""

    id: str  # f"{item_id}#{sample_index}"
    item_id: str
    sample_index: int
    teacher: str  # "backend:model", e.g. "scripted:dfs" or "openai:gpt-4o"
    exemplar_ids: list[str]
    question: str
    options: list[str]
    ground_truth: str
    image: str  # relative to the dataset dir recorded in the run
    width: int
    height: int
    difficulty: str
    turns: list[Turn]
    final_answer: str | None
    verdict: Verdict
    status: Status
    num_turns: int
    usage: Usage = field(default_factory=Usage)
    patterns: list[str] = field(default_factory=list)
    seed: int = 0
    error: str | None = None  # why the attempt failed (status == "failed"), never containing secrets

    @property
    def correct(self) -> bool:
        """Answered and judged right: the only attempts ever kept, counted or exported."""
        return self.status == "answered" and self.verdict.correct

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON and Arrow; shares this record's lists (dataclasses.asdict deep-copies every
        field, a cost paid on every finished attempt)."""
        d = field_values(self)
        d["turns"] = [field_values(t) for t in self.turns]
        d["verdict"] = field_values(self.verdict)
        d["usage"] = field_values(self.usage)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trajectory:
        d = dict(d)
        d["turns"] = [Turn(**t) for t in d["turns"]]
        d["verdict"] = Verdict(**d["verdict"])
        d["usage"] = Usage(**d["usage"])
        d["options"] = list(d.get("options") or [])
        d["exemplar_ids"] = list(d.get("exemplar_ids") or [])
        d["patterns"] = list(d.get("patterns") or [])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))


TRAJECTORY_SCHEMA = arrow_schema(Trajectory)


ROW_GROUP_ROWS = 1000  # readers (the exporter) stream a row group at a time


def write_parquet(path: str | os.PathLike, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    """Write rows atomically as one parquet file with an explicit schema."""
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", row_group_size=ROW_GROUP_ROWS)


def write_items(path: str | os.PathLike, items: list[ProbeItem]) -> None:
    write_parquet(path, [it.to_row() for it in items], PROBE_SCHEMA)


REQUIRED_COLUMNS = ("id", "image", "question", "answer")


def read_items(path: str | os.PathLike) -> list[ProbeItem]:
    """Read a dataset split; a missing or malformed file, a column of the wrong type or a repeated id is a
    one-line error naming the file. Rows are not judged here: each reader applies `row_rules`."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such dataset split (expected a parquet written by build-visualprobe)")
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises many types for corrupt files
        raise BadInputError(f"{path}: not a readable parquet file ({e.__class__.__name__})") from None
    missing = [name for name in REQUIRED_COLUMNS if name not in table.column_names]
    if missing:
        raise BadInputError(f"{path}: missing column(s) {missing}")
    for f in PROBE_SCHEMA:
        found = table.schema.field(f.name).type if f.name in table.column_names else None
        if found is not None and not readable_as(found, f.type):
            raise BadInputError(f"{path}: column {f.name!r} holds {found}, expected {f.type}")
    items = [ProbeItem.from_row(r) for r in table.to_pylist()]
    _refuse_repeated_ids(path, items)
    return items


def _refuse_repeated_ids(path: Path, items: list[ProbeItem]) -> None:
    """A run keys attempts by item id: two rows with one id would silently share (and replace) attempts."""
    repeated = sorted(str(i) for i, n in Counter(it.id for it in items).items() if n > 1 and i is not None)
    if repeated:
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        names = ", ".join(map(repr, repeated[:5]))
        raise BadInputError(f"{path}: item id(s) {names}{more} appear more than once; ids must be unique")


def write_trajectories(path: str | os.PathLike, trajs: list[Trajectory]) -> None:
    write_parquet(path, [t.to_dict() for t in trajs], TRAJECTORY_SCHEMA)


def read_trajectories(path: str | os.PathLike) -> list[Trajectory]:
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such trajectories file")
    return [Trajectory.from_dict(r) for r in pq.read_table(path).to_pylist()]
