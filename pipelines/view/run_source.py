"""A synth-coldstart (or eval) run dir as site entries: every attempt, kept or not, each with its page.

Curating means seeing what was rejected and why, so the entries are the attempts of attempts.jsonl (the
last line per (item, sample), as resume reads them), marked kept when curation put them in
trajectories.parquet. The log is read once, line by line, keeping only each line's offset and its index
row; a worker reads its lines again by offset. Pixels come from ZoomEnv under the run's own protocol.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from minio3_data.errors import BadInputError, ImageError
from minio3_data.fsutil import safe_relpath
from minio3_data.images import OriginalCache
from minio3_data.profiles import ProtocolProfile
from minio3_data.records import ProbeItem, Trajectory, read_items
from minio3_data.store import ATTEMPTS, RUN_JSON, SHAPE_ERRORS, read_run_json
from minio3_data.zoom import ZoomEnv
from pipelines.export_llamafactory.source_run import TRAJECTORIES, WORKER_CACHE_BYTES, run_protocol
from pipelines.sampling.ablation import ablation
from pipelines.synth_coldstart.patterns import tag_patterns

from .budget_outcomes import outcome_summary, outcome_tokens
from .entries import Entry, PageResult, Renderer, render_or_missing
from .excluded import excluded_fact
from .filters import Field
from .markup import esc, facts
from .search import SearchPictures
from .site import SiteImages, page_rel, write_page
from .trajectory_page import TrajectoryView, trajectory_page

ID_FIELDS = (Field("id", "id", choices=False), Field("item", "item", choices=False, column=False))
ATTEMPT_FIELDS = (
    Field("answer", "answer", choices=False),
    Field("truth", "ground truth", choices=False),
    Field("verdict", "verdict"),
    Field("status", "status"),
    Field("pattern", "patterns", multi=True),
    Field("difficulty", "difficulty"),
    Field("source", "data source"),
    Field("turns", "turns", numeric=True),
    Field("teacher", "teacher"),
    Field("cost", "cost $", numeric=True, choices=False),
)
RUN_FIELDS = (*ID_FIELDS, *ATTEMPT_FIELDS, Field("kept", "kept"))
STATS_JSON = "stats.json"
STATS_PNG = "stats.png"
_LINE_ERRORS = (ValueError, RecursionError, *SHAPE_ERRORS)  # what _parse_line raises for a damaged line


def _dataset_dir(run_dir: Path, record: dict[str, Any]) -> Path:
    return (run_dir / record["dataset"]).resolve()


def _items(dataset_dir: Path, split: str) -> dict[str, ProbeItem]:
    """The run's dataset rows by id, for target boxes and data sources; none when the dataset is gone (the
    pages then say so, and their images are listed missing)."""
    try:
        return {it.id: it for it in read_items(dataset_dir / f"{split}.parquet")}
    except BadInputError:
        return {}


def _kept_ids(run_dir: Path) -> frozenset[str]:
    path = run_dir / TRAJECTORIES
    if not path.is_file():
        return frozenset()
    try:
        return frozenset(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    except Exception:  # noqa: BLE001 - pyarrow raises many types for a damaged file
        raise BadInputError(
            f"{path}: not a readable trajectories parquet; rerun the synthesis to rewrite it"
        ) from None


def is_kept(kept: frozenset[str] | None, attempt_id: str) -> bool | None:
    """Whether curation kept the attempt; None where nothing was curated (an eval)."""
    return None if kept is None else attempt_id in kept


def _patterns(t: Trajectory) -> list[str]:
    """The attempt's pattern tags: as recorded, or tagged now for a record from before tagging."""
    return t.patterns or tag_patterns(t)


def _parse_line(line: bytes) -> Trajectory:
    """One attempts.jsonl line as its attempt; a line that is not one raises one of _LINE_ERRORS."""
    return Trajectory.from_dict(json.loads(line))


def index_values(
    t: Trajectory, item: ProbeItem | None, kept: bool | None, budgets: Sequence[int] = ()
) -> dict[str, Any]:
    """An attempt's index row: a run's marks whether curation `kept` it (None: an eval, which keeps no
    subset); an eval's gives its outcome at each of its `budgets`."""
    values: dict[str, Any] = {
        "id": t.id, "item": t.item_id, "answer": t.final_answer or "", "truth": t.ground_truth,
        "verdict": t.verdict.label, "status": t.status, "pattern": _patterns(t), "difficulty": t.difficulty,
        "source": item.source if item is not None else "", "turns": t.num_turns, "teacher": t.teacher,
        "cost": round(t.usage.cost_usd, 4),
    }  # fmt: skip
    if kept is not None:
        values["kept"] = "yes" if kept else "no"
    if budgets:
        values |= {"outcome": outcome_summary(t, budgets), "at": outcome_tokens(t, budgets)}
    return values


def _read_at(f: Any, offset: int) -> Trajectory:
    """The attempt whose line starts at `offset`; the log is append-only, so only a rewrite (a resume that
    moved damaged lines aside) since the site was started can put another line there."""
    f.seek(offset)
    try:
        return _parse_line(f.readline())
    except _LINE_ERRORS:
        raise BadInputError(f"{f.name}: rewritten while the site was built; build it again") from None


@dataclass
class TrajectoryRenderer:
    """Renders the pages of a chunk of attempts (inside a worker: its cache is made there, never pickled)."""

    log: Path
    dataset_dir: Path
    protocol: ProtocolProfile
    site: Path
    items: dict[str, ProbeItem]
    kept: frozenset[str] | None  # None: an eval, which keeps no subset
    budgets: tuple[int, ...]  # an eval's turn budgets; none for a run
    ablate: str | None = None  # an eval's ablation (run.json): its observations are drawn as the model got them
    cache: OriginalCache | None = field(default=None, repr=False)

    def __call__(self, entries: list[Entry]) -> list[PageResult]:
        if self.cache is None:
            self.cache = OriginalCache(WORKER_CACHE_BYTES)
        images = SiteImages(self.site)
        with open(self.log, "rb") as f:
            return [
                render_or_missing(e.id, lambda e=e: self.render(_read_at(f, e.locator), images))
                for e in entries
            ]

    def render(self, traj: Trajectory, images: SiteImages) -> PageResult:
        traj.patterns = _patterns(traj)
        path = safe_relpath(self.dataset_dir, traj.image, f"trajectory {traj.id}: image")
        env = ZoomEnv(path, cache=self.cache, protocol=self.protocol)
        problems: list[str] = []
        try:
            observations = env.replay(traj.turns)
            shown = ablation(self.ablate)
            if shown is not None:
                observations = [observations[0], *map(shown, observations[1:])]
        except ImageError:
            raise
        except BadInputError as e:  # the record disagrees with a replay: show what was stored, and say so
            problems.append(str(e))
            observations = None
        rel = page_rel(traj.id)
        key = Path(rel).stem
        item = self.items.get(traj.item_id)
        if item is None:
            problems.append(
                f"item {traj.item_id} is not in the run's dataset split: no target box or data source"
            )
        view = TrajectoryView(
            self.protocol,
            SearchPictures(images, env, path),
            key,
            observations,
            item,
            is_kept(self.kept, traj.id),
            self.budgets,
            problems,
            self.ablate,
        )
        html, thumb = trajectory_page(traj, view)
        return PageResult(traj.id, write_page(self.site, rel, html), thumb)


class RunSource:
    """A run dir (run.json + attempts.jsonl) read for the site."""

    kind = "run"
    fields = RUN_FIELDS

    def __init__(self, path: Path, budgets: Sequence[int] = ()) -> None:
        """`budgets`: an eval's turn budgets. An eval keeps every finished trajectory (it has no
        keep-filter), so its entries show their outcome at each budget where a run's show whether they were
        kept."""
        self.path = path
        self.budgets = tuple(budgets)
        self.record = read_run_json(path)
        self.identity = self.record.get("identity") if isinstance(self.record.get("identity"), dict) else {}
        self.protocol = run_protocol(path, stage=None)
        self.ablate = self.identity.get("ablate") if isinstance(self.identity.get("ablate"), str) else None
        self.dataset_dir = _dataset_dir(path, self.record)
        self.split = str(self.identity.get("split") or "train")
        self.items = _items(self.dataset_dir, self.split)
        self.kept = None if self.budgets else _kept_ids(path)
        self.log = path / ATTEMPTS
        self.notes: list[str] = []
        if not self.dataset_dir.is_dir():
            self.notes.append(
                f"{path / RUN_JSON}: dataset dir {self.dataset_dir} does not exist; no page can be made"
            )

    def entries(self) -> Iterator[Entry]:
        """The last line of each (item, sample) in attempts.jsonl, ordered by item and sample; lines that do
        not parse (a torn tail, damage) are skipped and counted in `notes`."""
        latest: dict[tuple[str, int], Entry] = {}
        bad = 0
        if self.log.is_file():
            with open(self.log, "rb") as f:
                offset = 0
                for line in f:
                    start, offset = offset, offset + len(line)
                    if not line.strip():
                        continue
                    try:
                        t = _parse_line(line)
                        key = (str(t.item_id), int(t.sample_index))
                    except _LINE_ERRORS:
                        bad += 1
                        continue
                    item, kept = self.items.get(t.item_id), is_kept(self.kept, t.id)
                    latest[key] = Entry(t.id, index_values(t, item, kept, self.budgets), start, t.image)
        if bad:
            self.notes.append(f"{self.log}: skipped {bad} line(s) that are not attempt records")
        for key in sorted(latest):
            yield latest[key]

    def renderer(self, site: Path) -> Renderer:
        return TrajectoryRenderer(
            self.log, self.dataset_dir, self.protocol, site, self.items, self.kept, self.budgets, self.ablate
        )

    def header(self, images: SiteImages) -> str:
        """Who made the run and how it went: run.json's identity, stats.json's totals and stats.png."""
        ident = self.identity
        rows = [
            ("run", esc(self.path)),
            (
                "teacher",
                esc(f"{ident.get('teacher')}" + (f" ({ident.get('model')})" if ident.get("model") else "")),
            ),
            ("protocol", esc(self.protocol.name)),
            *([("ablation", esc(f"{self.ablate}: the crops are shown as the model was sent them"))]
              if self.ablate else []),
            ("dataset", esc(f"{self.dataset_dir} ({self.split})")),
            ("samples per item", esc(ident.get("samples_per_item", "?"))),
            ("max turns", esc(ident.get("max_turns", "?"))),
        ]
        stats = _read_json(self.path / STATS_JSON)
        if stats:
            usage = stats.get("usage") or {}
            rows.append((
                "attempts", esc(f"{stats.get('attempts')} ({stats.get('kept')} kept, acceptance "
                                f"{stats.get('acceptance', 0):.0%}, ${usage.get('cost_usd', 0):.2f})"),
            ))  # fmt: skip
        excluded = excluded_fact(self.path)
        if excluded:
            rows.append(excluded)
        plot = ""
        if (self.path / STATS_PNG).is_file():
            src = images.put("stats.png", (self.path / STATS_PNG).read_bytes())
            plot = (
                f'<details><summary>stats.png</summary><img src="{esc(src)}" alt="run statistics"></details>'
            )
        return facts(rows) + plot


def _read_json(path: Path) -> dict[str, Any]:
    """A summary file the site shows if it can; a missing or damaged one only leaves its lines out."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
