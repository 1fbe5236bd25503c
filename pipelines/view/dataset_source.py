"""A dataset dir as site entries: one page per question, with its target drawn where the answer is.

A curator checks an item by seeing the question next to the target: is the box on the object the question
means, is the answer right, is it as small at first glance as its difficulty says. The first-glance size is
the difficulty rule's own measure (build_visualprobe/difficulty.py), on the first view of the manifest's
protocol; the close-up is ZoomEnv's crop of the target, as a model zooming right onto it would see it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from minio3_data.errors import BadInputError
from minio3_data.fsutil import safe_relpath
from minio3_data.images import OriginalCache
from minio3_data.profiles import ProtocolProfile
from minio3_data.protocol import OPTION_LETTERS, Zoom
from minio3_data.records import ProbeItem, read_items
from minio3_data.zoom import Observation, ZoomEnv, to_relative
from pipelines.build_visualprobe.difficulty import SIZE_CUTS, size_points, view_px
from pipelines.export_llamafactory.source_run import WORKER_CACHE_BYTES

from .entries import Entry, PageResult, Renderer, render_or_missing, summary_json
from .excluded import excluded_fact
from .filters import Field
from .markup import document, esc, facts, picture_html, problems_html, question_html
from .search import SearchPictures
from .site import INDEX, SiteImages, from_page, page_rel, write_page

SPLITS = ("train", "test")
MANIFEST = "manifest.json"
DATASET_FIELDS = (
    Field("id", "id", choices=False),
    Field("split", "split"),
    Field("difficulty", "difficulty"),
    Field("source", "data source"),
    Field("kind", "kind"),
    Field("glance", "first-glance px", numeric=True, choices=False),
)


def first_glance(item: ProbeItem) -> float | None:
    """The smallest target's shorter side in the first view (the difficulty rule's size measure: a count is
    as hard to see as its smallest object), or None. A row that records only the union of its targets
    (older datasets, sources that give no more) is sized by the union."""
    boxes = item.target_boxes or ([item.target_bbox] if item.target_bbox is not None else [])
    if not boxes or any(len(b) != 4 for b in boxes) or item.width <= 0 or item.height <= 0:
        return None
    return round(view_px(boxes, item.width, item.height), 1)


def _target_html(item: ProbeItem) -> str:
    if not item.target_bbox:
        return "(none)"
    several = len(item.target_boxes) > 1
    return esc(item.target_bbox) + " px (yellow)" + (
        f", the union of {len(item.target_boxes)} targets: {esc(item.target_boxes)}" if several else ""
    )


def _item_facts(item: ProbeItem, split: str, glance: float | None) -> str:
    answer = esc(item.answer)
    letter = OPTION_LETTERS.find(item.answer) if len(item.answer) == 1 else -1
    if 0 <= letter < len(item.options):
        answer += f" ({esc(item.options[letter])})"
    size = "no target box"
    if glance is not None:
        size = (
            f"{glance:g} px: the (smallest) target's shorter side in the first view; "
            f"size points {size_points(glance)} "
            f"(&ge; {SIZE_CUTS[0]:g} px: 0, {SIZE_CUTS[1]:g}-{SIZE_CUTS[0]:g}: 1, &lt; {SIZE_CUTS[1]:g}: 2)"
        )
    rows = [
        ("question", question_html(item.question, item.options)),
        ("answer", answer),
        ("difficulty", esc(item.difficulty)),
        ("first-glance size", size),
        ("kind", esc(item.kind or "(none)")),
        ("data source", esc(item.source)),
        ("split", esc(split)),
        ("target box", _target_html(item)),
        ("image", esc(f"{item.image} ({item.width}x{item.height})")),
    ]
    return facts(rows)


@dataclass
class ItemRenderer:
    dataset_dir: Path
    protocol: ProtocolProfile
    site: Path
    cache: OriginalCache | None = field(default=None, repr=False)

    def __call__(self, entries: list[Entry]) -> list[PageResult]:
        if self.cache is None:
            self.cache = OriginalCache(WORKER_CACHE_BYTES)
        images = SiteImages(self.site)
        return [render_or_missing(e.id, lambda e=e: self.render(e, images)) for e in entries]

    def render(self, entry: Entry, images: SiteImages) -> PageResult:
        split, item = entry.locator
        path = safe_relpath(self.dataset_dir, item.image, f"item {item.id}: image")
        env = ZoomEnv(path, cache=self.cache, protocol=self.protocol)
        rel = page_rel(f"{split}/{item.id}")
        pictures = SearchPictures(images, env, path)
        overview, thumb = pictures.overview(
            Path(rel).stem, [], item.target_bbox, "the first view, the target in yellow"
        )
        problems: list[str] = []
        close_up = ""
        if item.target_bbox is not None:
            zoomed = env.step(Zoom(to_relative(item.target_bbox, (0, 0, env.width, env.height))))
            if isinstance(zoomed, Observation):
                w, h = zoomed.size
                caption = f"a zoom right onto the target: box {list(zoomed.box)}, sent at {w}&times;{h} px"
                close_up = picture_html(pictures.observation(zoomed, [], caption))
            else:
                problems.append(f"the target box cannot be zoomed into: {zoomed.message}")
        body = (
            f'<p><a href="{from_page(INDEX)}">&larr; index</a></p><h1>{esc(item.id)}</h1>'
            f"{problems_html(problems)}"
            f"{_item_facts(item, split, entry.values.get('glance'))}"  # type: ignore[arg-type]
            f"{picture_html(overview)}{close_up}"
        )
        return PageResult(
            entry.id, write_page(self.site, rel, document(f"{item.id} - minio3 view", body)), thumb
        )


class DatasetSource:
    """A dataset dir (manifest.json + train/test parquet) read for the site."""

    kind = "dataset"
    fields = DATASET_FIELDS

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest, self.protocol = summary_json(path / MANIFEST, "a dataset dir")
        self.notes: list[str] = []
        self.splits = [s for s in SPLITS if (path / f"{s}.parquet").is_file()]
        if not self.splits:
            raise BadInputError(f"{path}: neither train.parquet nor test.parquet; is it a dataset dir?")

    def entries(self) -> Iterator[Entry]:
        for split in self.splits:
            for item in read_items(self.path / f"{split}.parquet"):
                values = {
                    "id": item.id, "split": split, "difficulty": item.difficulty, "source": item.source,
                    "kind": item.kind, "glance": first_glance(item),
                }  # fmt: skip
                yield Entry(f"{split}/{item.id}", values, (split, item), item.image)

    def renderer(self, site: Path) -> Renderer:
        return ItemRenderer(self.path.resolve(), self.protocol, site)

    def header(self, images: SiteImages) -> str:
        counts = self.manifest.get("counts") or {}
        rows = [
            ("dataset", esc(self.path.resolve())),
            ("source", esc(self.manifest.get("source", "?"))),
            ("protocol (first view)", esc(self.protocol.name)),
        ]
        for split, c in counts.items():
            if isinstance(c, dict):
                mix = ", ".join(f"{d} {n}" for d, n in (c.get("by_difficulty") or {}).items())
                rows.append((split, esc(f"{c.get('total', '?')} items ({mix})")))
        excluded = excluded_fact(self.path)
        older = self.manifest.get("skipped") or []  # a dataset built before excluded.jsonl lists them here
        if excluded:
            rows.append(excluded)
        elif older:
            rows.append(("skipped while building", esc(f"{len(older)} (reasons in manifest.json)")))
        return facts(rows)
