"""The index: every entry in one table (thumbnail, link, the fields filters see), the filter controls, and
the entries that got no page with why.

Each row carries its values as JSON (`data-v`), which the inlined script filters and sorts on; the field list
travels as JSON too, so the page and `--filter` know the same fields.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from .entries import Entry, PageResult
from .filters import Field, Value
from .markup import document, esc, label
from .script import INDEX_SCRIPT


def _cell(value: Value) -> str:
    if isinstance(value, list):
        return esc(", ".join(map(str, value)))
    return label(value) if isinstance(value, str) else esc(value)


def _columns(fields: Sequence[Field]) -> list[Field]:
    """The columns after the id (which is the link)."""
    return [f for f in fields if f.column and f.name != "id"]


def _controls(fields: Sequence[Field], entries: Sequence[Entry], expr: str) -> str:
    parts = [
        (
            f'<label>filter <input type="text" id="filter" value="{esc(expr)}" '
            'placeholder="status=answered,verdict=wrong|unjudged,turns>=4" spellcheck="false"></label>'
        )
    ]
    for f in fields:
        if not f.choices:
            continue
        if f.numeric:
            parts.append(
                f'<label>{esc(f.label)} &ge; <input type="number" data-field="{f.name}" data-op="&gt;=" '
                f'style="width:4em"></label><label>&le; <input type="number" data-field="{f.name}" '
                'data-op="&lt;=" style="width:4em"></label>'
            )
            continue
        seen: set[str] = set()
        for e in entries:
            v = e.values.get(f.name)
            seen.update(map(str, v) if isinstance(v, list) else [str(v if v is not None else "")])
        options = "".join(
            f'<option value="{esc(v)}">{esc(v or "(none)")}</option>' for v in sorted(seen) if v
        )
        parts.append(
            f'<label>{esc(f.label)} <select data-field="{f.name}">'
            f'<option value="">all</option>{options}</select></label>'
        )
    return f'<div class="filters">{"".join(parts)}</div><p id="filter-error"></p>'


def _row(entry: Entry, result: PageResult, fields: Sequence[Field], thumbs: bool) -> str:
    data = esc(json.dumps(entry.values, ensure_ascii=False, separators=(",", ":")))
    link = f'<a href="{esc(result.page)}">{esc(entry.id)}</a>' if result.page else esc(entry.id)
    if result.missing:
        link += '<br><span class="bad">no page: see below</span>'
    cells = []
    if thumbs:
        thumb = (
            f'<a href="{esc(result.page)}"><img loading="lazy" src="{esc(result.thumb)}" alt=""></a>'
            if result.thumb and result.page
            else ""
        )
        cells.append(f"<td>{thumb}</td>")
    cells.append(f"<td>{link}</td>")
    cells += [f"<td>{_cell(entry.values.get(f.name))}</td>" for f in _columns(fields)]
    return f'<tr data-v="{data}">{"".join(cells)}</tr>'


def index_page(
    title: str,
    header: str,
    fields: Sequence[Field],
    rows: Sequence[tuple[Entry, PageResult]],
    expr: str,
    notes: Sequence[str],
) -> str:
    """The whole index page. `expr` (the --filter the site was built with) only fills the filter box: the
    rows are already the ones it selected, so it hides nothing more."""
    entries = [e for e, _ in rows]
    thumbs = any(r.thumb for _, r in rows)
    heads = (["<th></th>"] if thumbs else []) + ['<th data-sort="id">id</th>']
    heads += [f'<th data-sort="{f.name}">{esc(f.label)}</th>' for f in _columns(fields)]
    missing = [(e, r) for e, r in rows if r.missing]
    missing_html = ""
    if missing:
        items = "".join(f"<li><b>{esc(e.id)}</b>: {esc(r.missing)}</li>" for e, r in missing)
        word = "entry" if len(missing) == 1 else "entries"
        missing_html = (
            f'<h2 class="bad">No page for {len(missing)} {word}</h2><ul class="problems">{items}</ul>'
        )
    notes_html = "".join(f'<p class="bad">{esc(n)}</p>' for n in notes)
    fields_json = json.dumps([asdict(f) for f in fields]).replace("</", "<\\/")
    body = (
        f"<h1>{esc(title)}</h1>{header}{notes_html}{_controls(fields, entries, expr)}"
        f'<p><span id="shown">{len(rows)}</span> of {len(rows)} shown</p>'
        f'<table class="index" id="entries"><thead><tr>{"".join(heads)}</tr></thead><tbody>'
        + "".join(_row(e, r, fields, thumbs) for e, r in rows)
        + f"</tbody></table>{missing_html}"
        f'<script type="application/json" id="fields">{fields_json}</script>'
    )
    return document(title, body, INDEX_SCRIPT)
