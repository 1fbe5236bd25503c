"""The crash-safe run store: append-only JSON lines that survive SIGKILL and resume without duplicates.

Two logs live in a run dir:
  - `attempts.jsonl`: one finished attempt per line, flushed as it ends. Resume skips every (item, sample)
    with a finished line; a `failed` attempt (endpoint down, budget hit) is retried, and the last line
    for a key wins, so nothing is ever counted twice.
  - `replies.jsonl`: every teacher reply as it arrives, keyed by attempt, turn and a hash of the request.
    A resumed attempt replays its paid turns from here at zero cost instead of asking the teacher again.
A SIGKILL during an append leaves a torn last line; it is dropped (and reported), never parsed as done.
A damaged line anywhere else (a bad disk, a hand edit) is skipped, reported and moved to `<log>.bad`: the
records after it are kept. A failed write (a full disk) is undone, so the log stays valid, and stops the run.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from .errors import BadInputError, StorageError
from .exclusions import Exclusion
from .fsutil import atomic_write_bytes, atomic_write_text
from .named_dirs import RUN_JSON
from .records import Trajectory, Usage

ATTEMPTS = "attempts.jsonl"
REPLIES = "replies.jsonl"
RETRY_STATUSES = frozenset({"failed"})
SHOWN_LINES = 10  # line numbers listed in a damage report; the count is always whole

T = TypeVar("T")
# what a record of the wrong shape (valid JSON, not a record) raises while being built
SHAPE_ERRORS = (TypeError, KeyError, ValueError, BadInputError)


@dataclass
class LogDamage:
    """What reading one log found damaged: a torn last line (dropped) and bad lines elsewhere (skipped)."""

    file: str
    torn_bytes: int = 0
    bad_lines: list[int] = field(default_factory=list)  # 1-based, in the file as it was read
    kept_aside: str | None = None  # where repair moved the bad lines; None when the log was only read

    def describe(self) -> str:
        parts = [f"dropped a torn last line of {self.torn_bytes} bytes"] if self.torn_bytes else []
        n = len(self.bad_lines)
        if n:
            shown = ", ".join(map(str, self.bad_lines[:SHOWN_LINES])) + (", ..." if n > SHOWN_LINES else "")
            where = f", moved to {self.kept_aside}" if self.kept_aside else ""
            parts.append(f"skipped {n} damaged line{'s' if n > 1 else ''} (line {shown}){where}")
        return f"{self.file}: {'; '.join(parts)}"

    def exclusions(self, stage: str) -> list[Exclusion]:
        """Each line this read left out, as `stage` lists it in its excluded.jsonl."""
        kept = f"set aside in {self.kept_aside}" if self.kept_aside else "left in place"
        records = [Exclusion(stage, f"{self.file} line {n}", "damaged line", f"not a valid record; {kept}")
                   for n in self.bad_lines]  # fmt: skip
        if self.torn_bytes:
            detail = f"{self.torn_bytes} bytes of an interrupted write, dropped"
            records.append(Exclusion(stage, f"{self.file} last line", "torn line", detail))
        return records


def _write_all(fd: int, payload: bytes) -> None:
    """os.write may write less than asked (a full disk): write the rest until all is written or it raises."""
    view = memoryview(payload)
    while view:
        n = os.write(fd, view)
        if n == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]


class JsonlLog:
    """An append-only JSON-lines file: each record is one whole write (+ fsync on request) or none at all."""

    def __init__(self, path: Path, fsync: bool = False) -> None:
        self.path = path
        self.fsync = fsync
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._broken: StorageError | None = None  # a failed write could not be undone: append nothing after it

    @property
    def bad_path(self) -> Path:
        return self.path.with_name(self.path.name + ".bad")

    def read(self, parse: Callable[[Any], T], repair: bool = True) -> tuple[list[T], LogDamage | None]:
        """Every record `parse` accepts. Only the last line can be torn by a kill: when it does not parse it is
        dropped. Any other line that does not parse, or that `parse` rejects, is skipped. With `repair` the
        file is fixed for the next append: a torn line is cut off, bad lines are moved to `bad_path`."""
        if not self.path.exists():
            return [], None
        data = self.path.read_bytes()
        lines = data.split(b"\n")  # the last element is what follows the last newline (b"" when none)
        last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
        records: list[T] = []
        good: list[bytes] = []
        bad: list[int] = []
        torn_at = None  # byte offset of a torn last line
        pos = 0
        for i, line in enumerate(lines):
            start, pos = pos, pos + len(line) + 1
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                if i == last:
                    torn_at = start
                    break
                bad.append(i)
                continue
            try:
                records.append(parse(row))
                good.append(line)
            except SHAPE_ERRORS:
                bad.append(i)
        damage = None
        if bad or torn_at is not None:
            damage = LogDamage(str(self.path), len(data) - torn_at if torn_at is not None else 0, [i + 1 for i in bad])
        if repair:
            self._repair(data, good, [lines[i] for i in bad], torn_at, damage)
        return records, damage

    def _repair(self, data: bytes, good: list[bytes], bad: list[bytes], torn_at: int | None,
                damage: LogDamage | None) -> None:
        """Leave the file holding only good lines, each ending in a newline, so the next append starts clean."""
        self.close()  # a rewrite replaces the file: never append to the old one
        try:
            if bad:
                self._keep_aside(bad)
                atomic_write_bytes(self.path, b"".join(line + b"\n" for line in good))
                assert damage is not None
                damage.kept_aside = str(self.bad_path)
            elif torn_at is not None:
                with open(self.path, "r+b") as f:
                    f.truncate(torn_at)
            elif data and not data.endswith(b"\n"):  # a whole last record whose newline never made it
                self.append_bytes(b"\n")
                self.close()
        except OSError as e:
            raise StorageError.from_os(self.path, e) from None

    def _keep_aside(self, bad: list[bytes]) -> None:
        """Append the bad lines to `bad_path`, once: a repair killed before its rewrite finds them there."""
        seen = set(self.bad_path.read_bytes().split(b"\n")) if self.bad_path.exists() else set()
        new = [line for line in dict.fromkeys(bad) if line not in seen]
        if new:
            aside = JsonlLog(self.bad_path, fsync=True)
            try:
                aside.append_bytes(b"".join(line + b"\n" for line in new))
            finally:
                aside.close()

    def append(self, record: dict[str, Any] | str) -> None:
        line = record if isinstance(record, str) else json.dumps(record, ensure_ascii=False, separators=(",", ":"))
        self.append_bytes((line + "\n").encode("utf-8"))

    def append_bytes(self, payload: bytes) -> None:
        """Write `payload` whole; a failed write (ENOSPC, EIO, ...) is cut back off the file and raised as a
        StorageError, so no torn line ever sits before a later record."""
        with self._lock:
            if self._broken is not None:
                raise self._broken
            try:
                if self._fd is None:
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
                start = os.fstat(self._fd).st_size
            except OSError as e:
                raise StorageError.from_os(self.path, e) from None
            try:
                _write_all(self._fd, payload)
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as e:
                err = StorageError.from_os(self.path, e)
                try:
                    os.ftruncate(self._fd, start)
                except OSError:
                    self._broken = err
                raise err from None

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def _attempt(row: Any, samples: int | None = None) -> Trajectory:
    """An attempts.jsonl record; its key must be an (item id, sample index) to be resumed by, the index one of
    the run's `samples` per item when they are known (a line from elsewhere would count as an extra sample)."""
    t = Trajectory.from_dict(row)
    if not isinstance(t.item_id, str) or not isinstance(t.sample_index, int):
        raise TypeError("an attempt needs a string item_id and an integer sample_index")
    if samples is not None and not 0 <= t.sample_index < samples:
        raise ValueError(f"sample_index {t.sample_index} is not one of the run's {samples} samples per item")
    return t


def _reply(row: Any) -> dict[str, Any]:
    """A replies.jsonl record, with every field a replayed turn reads (see attempt._generate)."""
    if not (isinstance(row, dict) and isinstance(row.get("key"), str) and isinstance(row.get("text"), str)
            and isinstance(row.get("usage"), dict) and "finish_reason" in row):
        raise ValueError("a reply needs a string key and text, a usage object and a finish_reason")
    Usage(**row["usage"])  # unknown usage fields raise TypeError
    return row


@dataclass
class RunState:
    """What a run dir already holds when a run starts."""

    attempts: dict[tuple[str, int], Trajectory] = field(default_factory=dict)  # last line per key
    superseded: Usage = field(default_factory=Usage)  # what the earlier lines of retried attempts paid
    replies: dict[str, dict[str, Any]] = field(default_factory=dict)  # reply key -> reply record
    damaged: list[LogDamage] = field(default_factory=list)
    lines: int = 0
    reopened: set[tuple[str, int]] = field(default_factory=set)  # finished attempts to play on (a larger budget)

    def done(self, key: tuple[str, int]) -> bool:
        t = self.attempts.get(key)
        return t is not None and t.status not in RETRY_STATUSES and key not in self.reopened

    def reopen(self, keys: Iterable[tuple[str, int]]) -> None:
        """Play these finished attempts on: each replays its turns from the reply cache for free, as a retry
        does, and its next line replaces its last, so nothing is counted twice."""
        self.reopened.update(keys)

    def record(self, t: Trajectory) -> None:
        """`t` is the newest line for its (item, sample); the line it replaces stays counted in `superseded`,
        unless `t` is that line again, with at most another verdict: a copied line is not a retry and a
        re-judged one (a rerun asking the judge again) keeps its trajectory and usage: either paid once."""
        key = (t.item_id, t.sample_index)
        self.reopened.discard(key)
        earlier = self.attempts.get(key)
        if earlier is not None and replace(t, verdict=earlier.verdict) != earlier:
            self.superseded.add(earlier.usage)
        self.attempts[key] = t

    def paid_turns(self, key: tuple[str, int]) -> int:
        """Turns of a failed or reopened attempt that its line already paid for (they replay for free)."""
        t = self.attempts.get(key)
        return t.num_turns if t is not None and (t.status in RETRY_STATUSES or key in self.reopened) else 0


class RunStore:
    """Owns a run dir's logs. Thread-safe appends; safe to kill at any point."""

    def __init__(self, run_dir: str | os.PathLike, fsync: bool = False) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.attempts = JsonlLog(self.dir / ATTEMPTS, fsync=fsync)
        self.replies = JsonlLog(self.dir / REPLIES, fsync=fsync)

    def load(self, repair: bool = True, samples: int | None = None) -> RunState:
        """What the run dir holds; `repair=False` only reads (e.g. runs being merged elsewhere). With the run's
        `samples` per item (--samples-per-item), an attempt line of another sample index is a damaged line."""
        state = RunState()
        attempts, damage = self.attempts.read(functools.partial(_attempt, samples=samples), repair)
        state.lines = len(attempts)
        for t in attempts:
            state.record(t)
        replies, reply_damage = self.replies.read(_reply, repair)
        state.replies = {r["key"]: r for r in replies}
        state.damaged = [d for d in (damage, reply_damage) if d is not None]
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
        raise BadInputError(f"{path}: missing; is {run_dir} a run dir of synth-coldstart or eval?") from None
    except (OSError, ValueError):
        raise BadInputError(f"{path}: unreadable; move the run dir aside or pick another --out") from None
    if not isinstance(record, dict) or not isinstance(record.get("dataset"), str):
        raise BadInputError(f'{path}: not a JSON object with a "dataset" path')
    return record


def run_identity(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The data-shaping options a run was made with (run.json's "identity")."""
    identity = read_run_json(run_dir).get("identity")
    if not isinstance(identity, dict):
        raise BadInputError(f"{Path(run_dir) / RUN_JSON}: no identity; not made by synth-coldstart or eval")
    return identity


def write_run_json(run_dir: str | os.PathLike, identity: dict[str, Any], version: str) -> None:
    record = {"identity": identity, "dataset": identity["dataset"], "minio3": version}
    atomic_write_text(Path(run_dir) / RUN_JSON, json.dumps(record, indent=2) + "\n")


def identity_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """The data-shaping options on which two runs differ (empty: their attempts are interchangeable)."""
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
