"""Where things go in a site dir, and writing its image files once.

    index.html            the table of every entry, with filters
    pages/<slug>.html     one page per trajectory, dataset item or exported row
    img/<name>.jpg        pictures, named by what they show, so a first view or crop that many pages share
                          (two samples of one question) is written once
    site.json             what was built from what, and the entries that got no page, with why

Pages link with relative paths only, so the site opens from the file system, copied anywhere.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

from minio3_data.fsutil import atomic_write_bytes

INDEX = "index.html"
PAGES = "pages"
IMAGES = "img"
SITE_JSON = "site.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
SLUG_CHARS = 60


def page_rel(entry_id: str) -> str:
    """A file name for an entry's page: readable, safe on any file system and in a URL, and unique (ids
    that differ only in characters a file name cannot hold get different hashes)."""
    digest = hashlib.sha256(entry_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    slug = _UNSAFE.sub("_", entry_id).strip("._")[:SLUG_CHARS] or "entry"
    return f"{PAGES}/{slug}-{digest}.html"


class SiteImages:
    """Writes a site's pictures under img/, each name once (content-addressed names make a second write
    of the same name a waste, never a change); returns the path a page under pages/ links to."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / IMAGES).mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.root / IMAGES / name

    def put(self, name: str, data: bytes | None = None, *, make: Callable[[], bytes] | None = None) -> str:
        """Store `data` (or what `make()` returns, called only when the file is not there yet) as img/NAME."""
        path = self.path(name)
        if not path.exists():
            if data is None:
                assert make is not None, "give the bytes or a way to make them"
                data = make()
            atomic_write_bytes(path, data, fsync=False)  # the site dir is renamed into place when complete
        return f"{IMAGES}/{name}"


def write_page(site: Path, rel: str, html: str) -> str:
    """Write a page at its site path; returns the path, for the index to link."""
    (site / rel).parent.mkdir(parents=True, exist_ok=True)
    (site / rel).write_text(html, encoding="utf-8")
    return rel


def from_page(site_rel: str) -> str:
    """A site path as linked from a page in pages/."""
    return f"../{site_rel}"
