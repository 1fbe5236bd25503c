"""A stage's own report in a site header: its markdown table and its PNG plot, shown as the stage wrote them.

Eval's results.md and accuracy.png, compare's compare.md and compare.png: the site shows those files, never
numbers recomputed here, so it can never disagree with the stage's report.
"""

from __future__ import annotations

from pathlib import Path

from .markup import esc
from .site import SiteImages


def markdown_html(text: str) -> str:
    """The markdown the stages write (headings, pipe tables, paragraphs) as HTML; text is escaped, not run."""
    out: list[str] = []
    table: list[list[str]] = []

    def flush() -> None:
        if table:
            head, *rest = table
            out.append(
                '<table class="index"><thead><tr>'
                + "".join(f"<th>{esc(c)}</th>" for c in head)
                + "</tr></thead><tbody>"
                + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rest)
                + "</tbody></table>"
            )
            table.clear()

    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|"):
            cells = [c.strip() for c in s.strip("|").split("|")]
            if not all(set(c) <= set(":- ") for c in cells):  # the |---|---| separator row
                table.append(cells)
            continue
        flush()
        if s.startswith("#"):
            level = min(len(s) - len(s.lstrip("#")) + 1, 4)
            out.append(f"<h{level}>{esc(s.lstrip('#').strip())}</h{level}>")
        elif s:
            out.append(f"<p>{esc(s)}</p>")
    flush()
    return "".join(out)


def report_html(images: SiteImages, table: Path, png: Path, folder: str) -> str:
    """The table at `table` and the plot at `png` (copied into the site under img/FOLDER/), each only when the
    stage wrote it."""
    parts = []
    if table.is_file():
        parts.append(markdown_html(table.read_text(encoding="utf-8", errors="replace")))
    if png.is_file():
        src = images.put(f"{folder}/{png.name}", png.read_bytes())
        parts.append(
            f'<figure><img src="{esc(src)}" alt="{esc(png.stem)}" style="max-width:100%">'
            f"<figcaption>{esc(png.name)}</figcaption></figure>"
        )
    return "".join(parts)


__all__ = ["markdown_html", "report_html"]
