"""Publishing under a public address: `site.base_url`, canonical links and
the sitemap.

Absolute URLs are made by appending a page's root-relative path to the
base URL, which always ends in "/": `urljoin` would drop the last part of
a base without one ("https://host/atlas" + "x.html" gives "/x.html", C16).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

from atlas.errors import BuildError
from atlas.site.paths import SITEMAP

# The sitemaps.org protocol caps one sitemap file at 50,000 URLs.
SITEMAP_URLS = 50_000
SITEMAP_PARTS = "sitemaps"
_XMLNS = "http://www.sitemaps.org/schemas/sitemap/0.9"
_SCHEMES = ("http", "https")

logger = logging.getLogger(__name__)


def normalize_base_url(url: str | None) -> str | None:
    """The base URL ending in exactly one "/", or None when unset or blank.

    Raises `BuildError` for anything but an absolute http(s) URL without a
    query or fragment, naming the `site.base_url` key.
    """
    if url is None or not url.strip():
        return None
    text = url.strip()
    parts = urlsplit(text)
    if (
        parts.scheme not in _SCHEMES
        or not parts.netloc
        or parts.query
        or parts.fragment
    ):
        raise BuildError(
            f"site.base_url must be an absolute http(s) address without a query "
            f"or fragment, like 'https://example.org/atlas/'; got {url!r}; fix "
            "site.base_url in site_config.toml"
        )
    return text.rstrip("/") + "/"


def absolute_url(base: str, path: str) -> str:
    """The public address of the root-relative file `path` under `base`."""
    return base + quote(path, safe="/")


def sitemap_files(base: str, pages: Sequence[str]) -> list[tuple[str, bytes]]:
    """(path, bytes) of the sitemap: one file, or an index of parts when
    there are more pages than one sitemap may list."""
    urls = [absolute_url(base, page) for page in pages]
    if len(urls) <= SITEMAP_URLS:
        return [(SITEMAP, _urlset(urls))]
    parts = [
        (
            f"{SITEMAP_PARTS}/{number:04d}.xml",
            _urlset(urls[start : start + SITEMAP_URLS]),
        )
        for number, start in enumerate(range(0, len(urls), SITEMAP_URLS), start=1)
    ]
    index = _document(
        "sitemapindex",
        [
            f"<sitemap><loc>{escape(absolute_url(base, path))}</loc></sitemap>"
            for path, _ in parts
        ],
    )
    return [(SITEMAP, index), *parts]


def _urlset(urls: Sequence[str]) -> bytes:
    return _document("urlset", [f"<url><loc>{escape(url)}</loc></url>" for url in urls])


def _document(root: str, entries: Sequence[str]) -> bytes:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<{root} xmlns="{_XMLNS}">',
        *entries,
        f"</{root}>",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")
