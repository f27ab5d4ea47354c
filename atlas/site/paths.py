"""Links between the site's files, always relative to the linking page.

Every path is root-relative with "/" separators and names a file, so the
site works from any folder, from a `file://` URL and behind any host path.
"""

from __future__ import annotations

import logging

INDEX = "index.html"
STYLESHEET = "static/style.css"
SCRIPT = "static/atlas.js"
ICON = "static/favicon.svg"
MANIFEST = "manifest.json"
# A classic script that sets a global: a page opened from disk cannot
# fetch JSON, but it can load a script (C15).
SEARCH_INDEX = "search-index.js"
SITEMAP = "sitemap.xml"

logger = logging.getLogger(__name__)


def relative(target: str, page: str) -> str:
    """The href from the file `page` to the file `target`, both root-relative.

    "units/c1/0003.html" reaches "static/style.css" as
    "../../static/style.css", and "units/c1/0004.html" as "0004.html".
    """
    folders = page.split("/")[:-1]
    parts = target.split("/")
    shared = 0
    while (
        shared < len(folders)
        and shared < len(parts) - 1
        and folders[shared] == parts[shared]
    ):
        shared += 1
    return "/".join([".."] * (len(folders) - shared) + parts[shared:])


def root_of(page: str) -> str:
    """The folder path from `page` back to the root: ".", "..", "../..", ..."""
    depth = page.count("/")
    return "/".join([".."] * depth) if depth else "."
