"""A synthesis run dir as an export source: trajectories in, ShareGPT rows with re-derived crops out.

Trajectories store actions, not pixels: each row's crops are re-derived by replaying its zooms through
ZoomEnv (which checks every replayed box against the recorded one), and stored under content-addressed
names so an original or a crop shared by several trajectories is written once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from minio3_data.errors import BadInputError, ImageError
from minio3_data.families import DEFAULT_FAMILY, ModelFamily, get_family
from minio3_data.fsutil import file_hash, safe_relpath
from minio3_data.images import OriginalCache, open_header
from minio3_data.profiles import ProtocolProfile, get_profile
from minio3_data.records import ProbeItem, Trajectory
from minio3_data.render import conversation, to_sharegpt
from minio3_data.row_rules import row_problems, row_reason
from minio3_data.store import RUN_JSON, SHAPE_ERRORS, read_run_json
from minio3_data.zoom import Observation, ZoomEnv

from ..parallel import span
from .media import FORMAT_EXT, ImageSink
from .row import PendingImage, RowResult, excluded, finish
from .stream import iter_rows, open_parquet
from .validate import Limits

TRAJECTORIES = "trajectories.parquet"
AS_IS_FORMATS = ("JPEG", "PNG")
# Decoded originals kept per worker process: enough for the trajectories of one chunk to share their
# original, small enough that memory stays flat however many workers run.
WORKER_CACHE_BYTES = 384 << 20


def run_protocol(run_dir: Path, stage: str | None = "export") -> ProtocolProfile:
    """The protocol a run was made in, refused where `stage` cannot speak it (None: any, as the viewer shows
    every run); runs from before profiles existed spoke what is now `minio3`."""
    name = read_run_json(run_dir).get("identity", {}).get("protocol", "minio3")
    return get_profile(name, f"{run_dir / RUN_JSON}: protocol", stage=stage)


def run_family(run_dir: Path) -> ModelFamily:
    """The model family a run budgeted its context for; runs from before families existed: Qwen2.5-VL."""
    name = read_run_json(run_dir).get("identity", {}).get("model_family", DEFAULT_FAMILY)
    return get_family(name, f"{run_dir / RUN_JSON}: model_family")


def _dataset_dir(run_dir: Path) -> Path:
    dataset_dir = (run_dir / read_run_json(run_dir)["dataset"]).resolve()
    if not dataset_dir.is_dir():
        raise BadInputError(
            f"{run_dir / RUN_JSON}: dataset dir {dataset_dir} does not exist; move it back or edit {RUN_JSON}"
        )
    return dataset_dir


def image_rel(sha: str, obs: Observation) -> str:
    """Content-addressed name: the original's first view by its file hash, a crop by that hash and its box."""
    if obs.index == 0:
        return f"images/orig/{sha}.jpg"
    return f"images/crops/{sha}_{'_'.join(str(v) for v in obs.box)}.jpg"


@lru_cache(maxsize=4096)
def _as_is_extension(path: Path) -> str | None:
    """The extension under which an original can be stored byte for byte, or None when LLaMA-Factory
    would see other pixels than ours (EXIF rotation, unusual modes or formats): then its first view is
    stored instead. LLaMA-Factory applies the same <= image_max_pixels rule as our first view."""
    with open_header(path, path) as im:  # already checked by ZoomEnv; one header reader for all
        if im.format not in AS_IS_FORMATS or im.mode not in ("RGB", "L") or im.getexif().get(0x0112, 1) != 1:
            return None
        return FORMAT_EXT[im.format]


def first_image(path: Path, sha: str, env: ZoomEnv, first: Observation) -> PendingImage:
    """The original file itself (no decode, no re-encode), or its first view when it cannot be kept as is."""
    ext = _as_is_extension(path)
    if ext is None:
        return PendingImage(image_rel(sha, first), *first.size, first.jpeg)
    return PendingImage(f"images/orig/{sha}.{ext}", env.width, env.height, path.read_bytes)


def _row_of(traj: Trajectory) -> ProbeItem:
    """The dataset row a trajectory was made from, as far as the trajectory recorded it (no target box)."""
    return ProbeItem(
        id=traj.item_id, image=traj.image, question=traj.question, answer=traj.ground_truth,
        options=list(traj.options), difficulty=traj.difficulty, width=traj.width, height=traj.height,
    )  # fmt: skip


@dataclass
class KeptRunSource:
    """Streams a run's kept trajectories in chunks, rendered in `protocol` (None: the run's own)."""

    run_dir: Path
    protocol: ProtocolProfile | None = None
    chunk_rows: int = 16

    def __post_init__(self) -> None:
        self.dataset_dir = _dataset_dir(self.run_dir)
        made_in = run_protocol(self.run_dir)
        self.protocol = self.protocol or made_in
        if self.protocol.frame != made_in.frame:  # its stored turns write boxes in the run's frame
            raise BadInputError(
                f"--protocol {self.protocol.name} writes boxes in {self.protocol.frame.range}, but {self.run_dir}'s turns "
                f"were written in {made_in.frame.range} (protocol {made_in.name}); export it in a protocol of that frame"
            )
        self.path = self.run_dir / TRAJECTORIES
        if not self.path.is_file():
            raise BadInputError(f"{self.path}: missing; run synth-coldstart to the end first")
        self._file = open_parquet(self.path)

    def count(self) -> int:
        return self._file.metadata.num_rows

    def chunks(self) -> Iterator[list[dict[str, Any]]]:
        return iter_rows(self._file, self.chunk_rows)

    def chunk_name(self, rows: list[dict[str, Any]]) -> str:
        return span([row["id"] for row in rows])

    def converter(self, root: Path | None, limits: Limits) -> RunConverter:
        assert self.protocol is not None  # set in __post_init__
        return RunConverter(self.dataset_dir, root, limits, self.protocol)


@dataclass
class RunConverter:
    """Turns trajectory records into export rows (runs inside a worker process)."""

    dataset_dir: Path
    root: Path | None  # export dir for image files; None embeds bytes
    limits: Limits
    protocol: ProtocolProfile  # the profile the rows are rendered in: texts, observation numbering, display sizes
    cache: OriginalCache | None = field(default=None, repr=False)  # made lazily in each worker, never pickled

    def __call__(self, rows: list[dict[str, Any]]) -> list[RowResult]:
        if self.cache is None:
            self.cache = OriginalCache(WORKER_CACHE_BYTES)
        sink = ImageSink(self.root)
        return [self.convert_row(r, sink) for r in rows]

    def convert_row(self, row: dict[str, Any], sink: ImageSink) -> RowResult:
        """One stored row; a row of the wrong shape (edited, or written by another tool) is excluded, not
        a reason to stop the export."""
        try:
            traj = Trajectory.from_dict(row)
        except SHAPE_ERRORS as e:
            rid = row.get("id") if isinstance(row.get("id"), str) else "(no id)"
            return excluded(rid, "bad record", f"not a trajectory record ({e.__class__.__name__}: {e})")
        return self.convert(traj, sink)

    def convert(self, traj: Trajectory, sink: ImageSink) -> RowResult:
        if not traj.correct:
            return excluded(traj.id, "not correct", f"status {traj.status}, verdict {traj.verdict.label}")
        try:
            path = safe_relpath(self.dataset_dir, traj.image, f"trajectory {traj.id}: image")
            env = ZoomEnv(path, cache=self.cache, protocol=self.protocol)
            sha = file_hash(path)
        except BadInputError as e:  # ImageError included: missing, corrupt or too large
            return excluded(traj.id, "bad image", str(e))
        problems = row_problems(_row_of(traj), (env.width, env.height))
        if problems:
            return excluded(traj.id, row_reason(problems), "; ".join(problems))
        try:
            observations = env.replay(traj.turns)
        except ImageError as e:
            return excluded(traj.id, "bad image", str(e))
        except BadInputError as e:
            return excluded(traj.id, "replay mismatch", str(e))
        images = [first_image(path, sha, env, observations[0])]
        images += [PendingImage(image_rel(sha, obs), *obs.size, obs.jpeg) for obs in observations[1:]]
        by_rel = {im.rel: im for im in images}  # indexed by observation, as to_sharegpt wants
        chat = conversation(traj.question, traj.options, traj.turns, protocol=self.protocol)
        record = to_sharegpt(chat, [im.rel for im in images])
        return finish(traj.id, record["conversations"], [by_rel[rel] for rel in record["images"]], sink, self.limits)
