"""The files of the templates' static/ folder that a built site publishes:
those its pages link to, and what those stylesheets load. The live probe's
own script and styles stay out of a static atlas (the live server serves
them from templates/static/ itself)."""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from atlas.errors import BuildError
from atlas.site.writer import SiteWriter

STATIC = "static"
_PAGE_LINK = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
_CSS_LINK = re.compile(r"""url\(\s*["']?([^"')]+)["']?\s*\)""")

logger = logging.getLogger(__name__)


class StaticAssets:
    """The static/ files that the written pages link to, gathered page by
    page, then copied from the templates in one go."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def add_page(self, page: str, html: bytes) -> None:
        """Note the static/ files that the page at site path `page` links."""
        text = html.decode("utf-8")
        self.used |= _static_targets(page, _PAGE_LINK.findall(text))

    def copy(self, folder: Path, writer: SiteWriter) -> list[str]:
        """Write every used file from `folder` (templates/static/) and what
        its stylesheets load; return their site paths, sorted."""
        todo, done = sorted(self.used), set()
        while todo:
            path = todo.pop()
            if path in done:
                continue
            data = _read(folder, path)
            writer.write(path, data)
            done.add(path)
            if path.endswith(".css"):
                links = _CSS_LINK.findall(data.decode("utf-8"))
                todo += sorted(_static_targets(path, links) - done)
        logger.debug("published %d static file(s): %s", len(done), sorted(done))
        return sorted(done)


def _static_targets(source: str, links: list[str]) -> set[str]:
    """The site paths inside static/ of relative `links` from `source`."""
    found = set()
    for link in links:
        parts = urlsplit(link)
        if parts.scheme or parts.netloc or not parts.path:
            continue
        if parts.path.startswith("/"):
            continue
        joined = posixpath.join(posixpath.dirname(source), unquote(parts.path))
        target = posixpath.normpath(joined)
        if target.startswith(f"{STATIC}/"):
            found.add(target)
    return found


def _read(folder: Path, path: str) -> bytes:
    file = Path(folder).joinpath(*path.split("/")[1:])
    if not Path(folder).is_dir():
        raise BuildError(
            f"the templates folder has no {STATIC}/ at {str(folder)!r}; "
            "expected the stylesheet and script there; restore templates/static/"
        )
    if not file.is_file():
        raise BuildError(
            f"the pages link to {path!r}, but {str(file)!r} does not exist; "
            f"expected every linked file in the templates' {STATIC}/ folder; "
            "add it there or remove the link from the template"
        )
    return file.read_bytes()


__all__ = ["STATIC", "StaticAssets"]
