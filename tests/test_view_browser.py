"""`minio3 view` in a real browser: headless Chromium opens the site from the file system, and the test reads
the screen's pixels and what the page's script left shown.

Under CI (env CI set) a missing chromium fails these tests; elsewhere they skip, saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import Browser, chromium_or_skip
from PIL import Image
from view_fixtures import PORTRAIT, attempts, page_of, planned_eval_site, scripted_run

from minio3_data.records import Trajectory
from pipelines.view import build_site
from pipelines.view import open_source
from pipelines.view.draw import box_color
from pipelines.view.eval_source import EVAL_FIELDS
from pipelines.view.filters import matches, parse_filter
from pipelines.view.markup import OBSERVATION_MAX_PX
from pipelines.view.run_source import RUN_FIELDS, index_values

TOLERANCE = 45  # per channel: JPEG and the browser's scaling move a drawn colour a little
WIDTH, HEIGHT = 1400, 1500


@pytest.fixture(scope="module")
def browser() -> Browser:
    with Browser(chromium_or_skip(), WIDTH, HEIGHT) as b:
        yield b


@pytest.fixture(scope="module")
def built(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Trajectory]]:
    root = tmp_path_factory.mktemp("browser")
    run = scripted_run(tiny_dataset, root / "run")
    build_site(run, root / "site", workers=2, progress=False)
    return root / "site", attempts(run)


def _near(pixel: tuple[int, ...], color: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= TOLERANCE for a, b in zip(pixel[:3], color))


def _edge_points(box: tuple[float, float, float, float], n: int = 12) -> list[tuple[int, int]]:
    """Points just inside the right and bottom edges of a box on the screen (labels sit at the top left)."""
    x0, y0, x1, y1 = box
    right = [(round(x1) - 1, round(y0 + (y1 - y0) * (i + 1) / (n + 1))) for i in range(n)]
    bottom = [(round(x0 + (x1 - x0) * (i + 1) / (n + 1)), round(y1) - 1) for i in range(n)]
    return right + bottom


def _share_drawn(shot: Image.Image, points: list[tuple[int, int]], color: tuple[int, int, int]) -> float:
    """The share of points where the colour is on screen (within a pixel of the point)."""
    hits = 0
    for x, y in points:
        around = [shot.getpixel((x + dx, y + dy)) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
        hits += any(_near(p, color) for p in around)
    return hits / len(points)


def _uncovered(zooms: list[tuple[int, list[int]]]) -> list[tuple[int, list[int]]]:
    """The zooms whose right and bottom edges no later zoom draws over (a second look at the same place, or a
    zoom reaching its source's edge, paints its own colour there)."""
    return [
        (turn, box) for i, (turn, box) in enumerate(zooms)
        if all(abs(box[2] - later[2]) > 8 and abs(box[3] - later[3]) > 8 for _, later in zooms[i + 1 :])
    ]  # fmt: skip


def test_every_zoom_box_is_drawn_where_it_was_recorded(browser: Browser, built, tmp_path: Path) -> None:
    site, trajs = built
    searches = [
        [(i + 1, turn.box_px) for i, turn in enumerate(t.turns) if turn.observation is not None]
        for t in trajs
    ]
    t, zooms = max(zip(trajs, searches), key=lambda pair: len(_uncovered(pair[1])))
    zooms = _uncovered(zooms)
    assert len(zooms) >= 2
    browser.open(page_of(site, t.id))
    browser.evaluate("document.querySelector('img.overview').scrollIntoView()")
    rect = browser.evaluate(
        "(() => { const r = document.querySelector('img.overview').getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height]; })()"
    )
    left, top, width, height = rect
    assert top + height <= HEIGHT, "the overview must fit on the screen"
    shot = Image.open(browser.screenshot(tmp_path / "page.png")).convert("RGB")
    scale = width / t.width
    for turn, (x0, y0, x1, y1) in zooms:
        on_screen = (left + x0 * scale, top + y0 * scale, left + x1 * scale, top + y1 * scale)
        share = _share_drawn(shot, _edge_points(on_screen), box_color(turn))
        assert share >= 0.8, (
            f"box of turn {turn} at {on_screen}: its colour shows at only {share:.0%} of its edge"
        )
    # control: the same check where no box was recorded (well inside the innermost box) finds no such edge
    turn, (x0, y0, x1, y1) = zooms[-1]
    inner = (left + (x0 + (x1 - x0) * 0.3) * scale, top + (y0 + (y1 - y0) * 0.3) * scale,
             left + (x0 + (x1 - x0) * 0.7) * scale, top + (y0 + (y1 - y0) * 0.7) * scale)  # fmt: skip
    assert _share_drawn(shot, _edge_points(inner), box_color(turn)) < 0.5


def _shown_ids(browser: Browser) -> list[str]:
    return browser.evaluate(
        "Array.from(document.querySelectorAll('#entries tbody tr')).filter(r => !r.hidden)"
        ".map(r => JSON.parse(r.dataset.v).id)"
    )


def _python_ids(trajs: list[Trajectory], expr: str) -> list[str]:
    clauses = parse_filter(expr, RUN_FIELDS)
    return sorted(
        t.id for t in trajs if matches(index_values(t, None, False) | {"kept": None, "source": None}, clauses)
    )


def test_the_index_filter_hides_rows_as_the_filter_language_says(browser: Browser, built) -> None:
    site, trajs = built
    browser.open(site / "index.html")
    assert (
        len(_shown_ids(browser))
        == len(trajs)
        == int(browser.evaluate("document.getElementById('shown').textContent"))
    )

    expr = "verdict=wrong,turns>=3"
    browser.open(site / "index.html", expr)  # a filtered view is an address
    wanted = _python_ids(trajs, expr)
    assert 0 < len(wanted) < len(trajs)
    assert sorted(_shown_ids(browser)) == wanted

    typed = "status=answered,pattern=backtrack|verification"
    browser.evaluate(
        f"(() => {{ const b = document.getElementById('filter'); b.value = {typed!r};"
        " b.dispatchEvent(new Event('input')); })()"
    )
    assert sorted(_shown_ids(browser)) == _python_ids(trajs, typed)
    assert browser.evaluate("decodeURIComponent(location.hash)") == f"#{typed}"

    browser.evaluate(
        "(() => { const b = document.getElementById('filter'); b.value = ''; b.dispatchEvent(new Event('input'));"
        " const s = document.querySelector('select[data-field=verdict]'); s.value = 'correct';"
        " s.dispatchEvent(new Event('change')); })()"
    )
    assert sorted(_shown_ids(browser)) == _python_ids(trajs, "verdict=correct")
    assert browser.evaluate("document.getElementById('filter').value") == "verdict=correct"

    browser.evaluate(
        "(() => { const b = document.getElementById('filter'); b.value = 'colour=red';"
        " b.dispatchEvent(new Event('input')); })()"
    )
    assert "no field colour" in browser.evaluate("document.getElementById('filter-error').textContent")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real eval of a tall picture (k = 5 at budgets 1, 2, 4; a loopback policy plays a script)."""
    return planned_eval_site(tmp_path_factory.mktemp("eval"))


def test_observations_show_at_a_bounded_size_and_a_click_opens_the_whole_picture(
    browser: Browser, evaluated: tuple[Path, Path]
) -> None:
    out, site = evaluated
    longest = max(attempts(out), key=lambda t: t.num_turns)
    browser.open(page_of(site, longest.id))
    shown = browser.evaluate(
        "Array.from(document.querySelectorAll('img[alt^=observation]')).map(i => {"
        " i.scrollIntoView(); const r = i.getBoundingClientRect();"
        " const x = r.left + r.width / 2, y = r.top + r.height / 2, hit = document.elementFromPoint(x, y);"
        " const covered = Array.from(i.closest('.frame').querySelectorAll('.box')).some(b => {"
        "   const q = b.getBoundingClientRect();"
        "   return q.left < x && x < q.right && q.top < y && y < q.bottom; });"
        " return {natural: [i.naturalWidth, i.naturalHeight], shown: [i.width, i.height], covered,"
        " opens: hit && hit.closest('a') ? hit.closest('a').href : null, src: i.src}; })"
    )
    assert len(shown) == 1 + sum(turn.observation is not None for turn in longest.turns) >= 3
    assert shown[0]["natural"] == list(PORTRAIT)  # the first view is the whole tall picture
    for pic in shown:
        (nw, nh), (w, h) = pic["natural"], pic["shown"]
        assert w <= OBSERVATION_MAX_PX[0] and h <= OBSERVATION_MAX_PX[1], pic
        assert abs(w / h - nw / nh) < 0.02, pic  # scaled, never stretched
        assert pic["opens"] == pic["src"], pic  # a click on it opens the picture
    assert any(pic["covered"] for pic in shown)  # ... also where a zoom's box lies over it
    assert shown[0]["shown"][1] == OBSERVATION_MAX_PX[1] < PORTRAIT[1]


def _python_eval_ids(out: Path, expr: str) -> list[str]:
    clauses = parse_filter(expr, EVAL_FIELDS)
    return sorted(e.id for e in open_source(out).entries() if matches(e.values, clauses))


def test_the_eval_index_filters_by_the_outcome_at_a_budget(
    browser: Browser, evaluated: tuple[Path, Path]
) -> None:
    out, site = evaluated
    expr = "at=2:over-turn,at=4:correct"
    browser.open(site / "index.html", expr)
    wanted = _python_eval_ids(out, expr)
    assert len(wanted) == 1 and sorted(_shown_ids(browser)) == wanted
    summary = "over-turn at 1; wrong from 2"
    browser.evaluate(
        "(() => { const b = document.getElementById('filter'); b.value = '';"
        " b.dispatchEvent(new Event('input'));"
        " const s = document.querySelector('select[data-field=outcome]');"
        f" s.value = {summary!r}; s.dispatchEvent(new Event('change')); }})()"
    )
    wanted = _python_eval_ids(out, f"outcome={summary}")
    assert len(wanted) == 1 and sorted(_shown_ids(browser)) == wanted
    assert browser.evaluate("document.getElementById('filter').value") == f"outcome={summary}"
