"""The built site as the live server sees it: which files may be served,
what the manifest says of each unit, and the probe links that only the
live server adds to layer and unit pages (a static build has none)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from atlas.site.paths import INDEX, MANIFEST, relative

PROBE_PAGE = "live/probe.html"
# Where the link goes on a page: after the page's heading.
ANCHOR = "</h1>"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnitFiles:
    """What the atlas holds for one unit, as site-root-relative paths."""

    index: int
    page: str | None
    images: dict[str, str]
    sheet: str | None


@dataclass
class SiteFiles:
    """A built site folder (or none): its files and its manifest's units."""

    root: Path | None
    units: dict[str, list[UnitFiles]] = field(default_factory=dict)
    pages: dict[str, tuple[str, int | None]] = field(default_factory=dict)

    def resolve(self, path: str) -> Path | None:
        """The file that URL path `path` names inside the site, or None.

        Nothing outside the folder, no part starting with "." (the build
        cache, the output marker), no folders but through their index.
        """
        if self.root is None or "\\" in path or "\x00" in path:
            return None
        parts = [part for part in path.split("/") if part]
        if any(part.startswith(".") for part in parts):
            return None
        target = self.root.joinpath(*parts)
        if target.is_dir():
            target = target / INDEX
        try:
            real = target.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        inside = real == self.root or self.root in real.parents
        return real if inside and real.is_file() else None

    def probe_link(self, page: str) -> str | None:
        """The probe link HTML for a layer or unit page, or None."""
        if page not in self.pages:
            return None
        layer, unit = self.pages[page]
        query = f"layer={quote(layer, safe='')}"
        label = "Probe this layer live"
        if unit is not None:
            query += f"&amp;unit={unit}"
            label = f"Probe unit {unit} live"
        href = f"{relative(PROBE_PAGE, page)}?{query}"
        return (
            f'<p class="live-probe"><a href="{href}">{label}</a>: its '
            "activations on a webcam, an upload or a dataset image.</p>"
        )


def open_site(root: Path | None) -> SiteFiles:
    """Read the built site at `root`; a missing or unreadable manifest
    leaves the probe without unit links, and says so."""
    if root is None:
        return SiteFiles(None)
    root = Path(root).resolve()
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        layers = [_layer(root, entry) for entry in manifest.get("layers", [])]
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        logger.warning(
            "cannot read %s (%s); the probe runs without links to unit "
            "pages. Run `atlas build` again to write it.",
            root / MANIFEST,
            exc,
        )
        return SiteFiles(root)
    site = SiteFiles(root)
    for name, page, units in layers:
        site.units[name] = units
        if page:
            site.pages[page] = (name, None)
        for unit in units:
            if unit.page:
                site.pages[unit.page] = (name, unit.index)
    return site


def with_probe_link(html: str, link: str) -> str:
    """`html` with `link` after its first heading (or unchanged)."""
    at = html.find(ANCHOR)
    if at < 0:
        return html
    at += len(ANCHOR)
    return html[:at] + "\n" + link + html[at:]


def _layer(root: Path, entry: dict) -> tuple[str, str | None, list[UnitFiles]]:
    """(name, page, units) of a manifest layer entry.

    Units are listed in the entry itself (manifest schema 1) or in the
    layer's data file that the entry names (schema 2).
    """
    units = entry.get("units")
    if units is None and entry.get("data"):
        data = root / entry["data"]
        units = json.loads(data.read_text(encoding="utf-8")).get("units", [])
    return entry["name"], entry.get("page"), [_unit(u) for u in units or []]


def _unit(entry: dict) -> UnitFiles:
    sheets = entry.get("sheets") or {}
    sheet = sheets.get("top") if isinstance(sheets, dict) else None
    return UnitFiles(
        index=int(entry["index"]),
        page=entry.get("page"),
        images=dict(entry.get("images") or {}),
        sheet=sheet or entry.get("sheet"),
    )
