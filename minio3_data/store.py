"""The crash-safe run store: append-only JSON lines that survive SIGKILL and resume without duplicates.

Two logs live in a run dir:
  - `attempts.jsonl`: one finished attempt per line, flushed as it ends. Resume skips every (item, sample)
    with a finished line; a `failed` attempt (endpoint down, budget hit) is retried, and the last line
    for a key wins, so nothing is ever counted twice.
  - `replies.jsonl`: every teacher reply as it arrives, keyed by attempt, turn and a hash of the request.
    A resumed attempt replays its paid turns from here at zero cost instead of asking the teacher again.
A SIGKILL during an append leaves a torn last line; it is dropped (and reported), never parsed as done.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BadInputError
from .fsutil import atomic_write_text
from .records import Trajectory, Usage

ATTEMPTS = "attempts.jsonl"
REPLIES = "replies.jsonl"
RUN_JSON = "run.json"  # {"identity": the options that shape the data, "dataset": its dir, "minio3": version}
RETRY_STATUSES = frozenset({"failed"})


@dataclass
class TornTail:
    """What resume found and dropped at the end of a log after a kill."""

    file: str
    bytes_dropped: int


class JsonlLog:
    """An append-only JSON-lines file: each record is one write + flush (+ fsync on request)."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fh = None

    def read(self, repair: bool = True) -> tuple[list[dict[str, Any]], TornTail | None]:
        """All complete records; a torn (unterminated or unparsable) tail is reported and, with `repair`,
        cut off the file so the next append starts on a fresh line."""
        if not self.path.exists():
            return [], None
        data = self.path.read_bytes()
        records: list[dict[str, Any]] = []
        good_end = 0
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                break
            line = data[pos:nl]
            try:
                if line.strip():
                    records.append(json.loads(line))
            except ValueError:
                break  # only the last line can be torn; anything after it is unreachable
            pos = nl + 1
            good_end = pos
        torn = None
        if good_end < len(data):
            torn = TornTail(self.path.name, len(data) - good_end)
            if repair:
                with open(self.path, "r+b") as f:
                    f.truncate(good_end)
        return records, torn

    def append(self, record: dict[str, Any] | str) -> None:
        line = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        payload = (line + "\n").encode("utf-8")
        with self._lock:
            if self._fh is None:
                self._fh = open(self.path, "ab", buffering=0)
            self._fh.write(payload)
            if self.fsync:
                os.fsync(self._fh.fileno())

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


@dataclass
class RunState:
    """What a run dir already holds when a run starts."""

    attempts: dict[tuple[str, int], Trajectory] = field(default_factory=dict)  # last line per key
    superseded: Usage = field(default_factory=Usage)  # what the earlier lines of retried attempts paid
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)  # reply key -> reply record
    torn: list[TornTail] = field(default_factory=list)
    lines: int = 0

    def done(self, key: tuple[str, int]) -> bool:
        t = self.attempts.get(key)
        return t is not None and t.status not in RETRY_STATUSES

    def record(self, t: Trajectory) -> None:
        """`t` is the newest line for its (item, sample); the line it replaces stays counted in `superseded`."""
        key = (t.item_id, t.sample_index)
        earlier = self.attempts.get(key)
        if earlier is not None:
            self.superseded.add(earlier.usage)
        self.attempts[key] = t

    def paid_turns(self, key: tuple[str, int]) -> int:
        """Turns of a failed attempt whose usage its line already counts (its retry replays them for free)."""
        t = self.attempts.get(key)
        return t.num_turns if t is not None and t.status in RETRY_STATUSES else 0


class RunStore:
    """Owns a run dir's logs. Thread-safe appends; safe to kill at any point."""

    def __init__(self, run_dir: str | os.PathLike, fsync: bool = False) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.attempts = JsonlLog(self.dir / ATTEMPTS, fsync=fsync)
        self.replies = JsonlLog(self.dir / REPLIES, fsync=fsync)

    def load(self, repair: bool = True) -> RunState:
        """What the run dir holds; `repair=False` only reads (e.g. runs being merged elsewhere)."""
        state = RunState()
        rows, torn = self.attempts.read(repair)
        state.lines = len(rows)
        for row in rows:
            state.record(Trajectory.from_dict(row))
        if torn:
            state.torn.append(torn)
        replies, torn = self.replies.read(repair)
        for r in replies:
            state.replies[r["key"]] = r
        if torn:
            state.torn.append(torn)
        return state

    def add_attempt(self, traj: Trajectory) -> None:
        self.attempts.append(traj.to_json())

    def add_reply(self, record: dict[str, Any]) -> None:
        self.replies.append(record)

    def close(self) -> None:
        self.attempts.close()
        self.replies.close()


def read_run_json(run_dir: str | os.PathLike) -> dict[str, Any]:
    """A run dir's run.json; a missing or malformed one is a one-line error naming it."""
    path = Path(run_dir) / RUN_JSON
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInputError(f"{path}: missing; is {run_dir} a synth-coldstart run dir?") from None
    except (OSError, ValueError):
        raise BadInputError(f"{path}: unreadable; move the run dir aside or pick another --out") from None
    if not isinstance(record, dict) or not isinstance(record.get("dataset"), str):
        raise BadInputError(f'{path}: not a JSON object with a "dataset" path')
    return record


def run_identity(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The data-shaping options a run was made with (run.json's "identity")."""
    identity = read_run_json(run_dir).get("identity")
    if not isinstance(identity, dict):
        raise BadInputError(f"{Path(run_dir) / RUN_JSON}: no identity; it was not written by synth-coldstart")
    return identity


def write_run_json(run_dir: str | os.PathLike, identity: dict[str, Any], version: str) -> None:
    record = {"identity": identity, "dataset": identity["dataset"], "minio3": version}
    atomic_write_text(Path(run_dir) / RUN_JSON, json.dumps(record, indent=2) + "\n")


def identity_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The data-shaping options on which two runs differ (empty: their attempts are interchangeable)."""
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
