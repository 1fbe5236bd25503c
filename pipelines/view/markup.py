"""The HTML every page of a site is made of: the document, a table of facts, a figure with boxes laid over
it, and a conversation as the model read it.

Boxes over an observation are laid on top with CSS rather than drawn into it, so the picture keeps the
exact pixels the model was sent (the test compares them byte for byte).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from minio3_data.protocol import IMAGE_PLACEHOLDER, OPTION_LETTERS

from .draw import RGB, TARGET_PAD_PX, box_color, hex_color

# an observation is shown at most this wide and tall (CSS px), so a page of many turns stays short enough to
# read through; a click on it opens the picture whole
OBSERVATION_MAX_PX = (480, 360)
STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
main { max-width: 1250px; }
a { color: #0b5cad; }
table.facts td, table.facts th { text-align: left; padding: 0.15em 0.8em 0.15em 0; vertical-align: top; }
.ok, .correct, .answered { color: #1a7f37; } .bad, .wrong, .failed, .malformed, .void { color: #c62828; }
.unjudged, .over_turn { color: #9a6700; }
.problems li { color: #c62828; font-family: monospace; }
figure { margin: 0.5em 0; } figcaption { font-size: 0.85em; color: #555; }
.overview { max-width: 100%; border: 1px solid #999; }
.frame { position: relative; display: inline-block; line-height: 0; }
.frame img { border: 1px solid #999; }
.frame .box { position: absolute; border: 3px solid; box-sizing: border-box; pointer-events: none; }
.frame .box.target { outline: 2px solid #000; }
.frame img.overview { max-width: 100%; max-height: 85vh; }
.frame img.overview ~ .box span { font-size: 16px; }
.frame .box span { position: absolute; top: -1.4em; left: -3px; color: #fff; font: bold 12px/1.4 sans-serif;
  padding: 0 4px; }
.msg { display: flex; gap: 1.2em; margin: 0.8em 0; padding: 0.6em 0.8em; border-radius: 6px; }
.msg .who { flex: 0 0 7em; font-weight: bold; }
.msg .what { flex: 1; white-space: pre-wrap; overflow-wrap: anywhere; }
.msg.system { background: #f4f4f4; } .msg.user { background: #eef5ff; } .msg.assistant { background: #fff8e6; }
.msg .note { display: block; white-space: normal; margin-top: 0.4em; font-size: 0.9em; }
.msg .err { color: #c62828; }
code { background: #f3f3f3; padding: 0.1em 0.3em; }
table.index { border-collapse: collapse; margin-top: 0.8em; }
table.index th, table.index td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; }
table.index th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
table.index img { max-width: 160px; max-height: 110px; display: block; }
.filters { display: flex; flex-wrap: wrap; gap: 0.6em 1.2em; align-items: center; margin: 0.8em 0; }
.filters input[type=text] { width: 28em; }
#filter-error { color: #c62828; }
""" + (
    f".frame img {{ max-width: {OBSERVATION_MAX_PX[0]}px; max-height: {OBSERVATION_MAX_PX[1]}px; }}\n"
)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def document(title: str, body: str, script: str = "") -> str:
    """A whole page: styles and script inline, nothing fetched, so it opens from the file system."""
    tail = f"<script>{script}</script>" if script else ""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{esc(title)}</title>'
        f"<style>{STYLE}</style></head><body><main>{body}</main>{tail}</body></html>\n"
    )


def facts(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table; values are HTML (callers escape what they did not make)."""
    cells = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="facts">{cells}</table>'


def question_html(question: str, options: Sequence[str]) -> str:
    lines = "".join(f"<br>{OPTION_LETTERS[i]}. {esc(o)}" for i, o in enumerate(options))
    return f"{esc(question)}{lines}"


def chip(number: int) -> str:
    """ "box N" in box N's colour: names a zoom in the text as its number names it on the pictures."""
    return f'<b style="color:{hex_color(box_color(number))}">box {number}</b>'


def label(value: object) -> str:
    """A value with its own class (answered, wrong, ...) so it gets its colour."""
    return f'<span class="{esc(value)}">{esc(value)}</span>'


@dataclass(frozen=True)
class Overlay:
    """A box over a picture, as fractions of its width and height."""

    left: float
    top: float
    right: float
    bottom: float
    label: str
    color: RGB
    target: bool = False  # the target: drawn a little outside its box, so it hides none of it


@dataclass
class Picture:
    src: str  # relative to the page
    caption: str  # HTML
    overlays: list[Overlay] = field(default_factory=list)
    alt: str = ""
    css_class: str = ""


def _overlay_html(o: Overlay) -> str:
    pad = TARGET_PAD_PX if o.target else 0
    place = (
        f"left:calc({o.left:.4%} - {pad}px);top:calc({o.top:.4%} - {pad}px);"
        f"width:calc({o.right - o.left:.4%} + {2 * pad}px);height:calc({o.bottom - o.top:.4%} + {2 * pad}px)"
    )
    label = f'<span style="background:{hex_color(o.color)}">{esc(o.label)}</span>' if o.label else ""
    kind = "box target" if o.target else "box"
    return f'<div class="{kind}" style="{place};border-color:{hex_color(o.color)}">{label}</div>'


def picture_html(pic: Picture) -> str:
    """A picture with its boxes laid over it (later ones on top), numbered above their top left corner."""
    boxes = "".join(_overlay_html(o) for o in pic.overlays)
    css = f' class="{esc(pic.css_class)}"' if pic.css_class else ""
    return (
        f'<figure><div class="frame"><a href="{esc(pic.src)}" target="_blank">'
        f'<img{css} src="{esc(pic.src)}" alt="{esc(pic.alt)}"></a>{boxes}</div>'
        f"<figcaption>{pic.caption}</figcaption></figure>"
    )


@dataclass
class PageMessage:
    """One message of a conversation: its text with IMAGE_PLACEHOLDER where each picture goes, and notes
    (HTML) that say what the environment made of it."""

    role: str
    text: str
    pictures: list[Picture] = field(default_factory=list)
    heading: str = ""
    notes: list[str] = field(default_factory=list)


def message_html(msg: PageMessage) -> str:
    pieces = msg.text.split(IMAGE_PLACEHOLDER)
    body = esc(pieces[0])
    for i, piece in enumerate(pieces[1:]):
        pic = msg.pictures[i] if i < len(msg.pictures) else None
        body += (picture_html(pic) if pic else esc(IMAGE_PLACEHOLDER)) + esc(piece)
    notes = "".join(f'<span class="note">{n}</span>' for n in msg.notes)
    if msg.role == "system":  # the same long prompt on every page: folded
        body = f"<details><summary>system prompt</summary>{body}</details>"
    return (
        f'<div class="msg {esc(msg.role)}"><div class="who">{esc(msg.heading or msg.role)}</div>'
        f'<div class="what">{body}{notes}</div></div>'
    )


def conversation_html(messages: Sequence[PageMessage]) -> str:
    return "".join(message_html(m) for m in messages)


def problems_html(problems: Sequence[str]) -> str:
    if not problems:
        return ""
    return '<ul class="problems">' + "".join(f"<li>{esc(p)}</li>" for p in problems) + "</ul>"
