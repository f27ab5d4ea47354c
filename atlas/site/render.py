"""Rendering an `AtlasRecord` into a static site: pages, images, data.

`render_site` plans every path and checks every array first, then writes
each file atomically inside the output folder. Templates receive the
frozen dataclasses of `atlas.site.pages` and `atlas.site.unit_page`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from atlas.errors import BuildError
from atlas.records import AtlasRecord, UnitRecord
from atlas.site import context, images, pages, sheets
from atlas.site.assets import STATIC, StaticAssets
from atlas.site.facts import format_number
from atlas.site.layout import LayerLayout, UnitFiles, plan_layout
from atlas.site.manifest import build_manifest, json_bytes, layer_document
from atlas.site.paths import INDEX, MANIFEST, SEARCH_INDEX
from atlas.site.pictures import GRID_CROPS
from atlas.site.publish import normalize_base_url, sitemap_files
from atlas.site.search import search_index
from atlas.site.unit_page import unit_pages
from atlas.site.writer import SiteSummary, SiteWriter

TEMPLATES = ("base.html", "macros.html", "index.html", "layer.html", "unit.html")
# Static hosts cap a deployment at 4,000 to 20,000 files (C17).
WARN_FILES = 20_000

logger = logging.getLogger(__name__)


def render_site(
    atlas: AtlasRecord,
    output: Path,
    templates: Path,
    *,
    base_url: str | None = None,
) -> SiteSummary:
    """Write the whole site for `atlas` into the existing folder `output`.

    With `base_url` (the `site.base_url` setting) pages carry canonical
    links and a sitemap is written; without it, neither.
    """
    started = time.perf_counter()
    environment = make_environment(templates)
    site = pages.Site(atlas, plan_layout(atlas), normalize_base_url(base_url))
    images.check_atlas(atlas)
    writer = SiteWriter(output)
    assets = StaticAssets()

    index = pages.index_page(site)
    _write_page(writer, assets, INDEX, _render(environment, "index.html", index))
    listed = [INDEX]
    for position in range(len(atlas.layers)):
        listed += _write_layer(environment, site, position, writer, assets)
    # Only what the pages link: the live probe's files stay out.
    assets.copy(Path(templates) / STATIC, writer)
    writer.write(SEARCH_INDEX, search_index(atlas, site.layout))
    manifest = build_manifest(atlas, site.layout, site.base_url)
    writer.write(MANIFEST, json_bytes(manifest))
    if site.base_url is not None:
        for path, data in sitemap_files(site.base_url, listed):
            writer.write(path, data)

    writer.prune()
    summary = writer.summary()
    _log_summary(summary, time.perf_counter() - started)
    return summary


def make_environment(templates: Path) -> Environment:
    """A Jinja environment over `templates` that escapes everything."""
    folder = Path(templates)
    missing = [name for name in TEMPLATES if not (folder / name).is_file()]
    if missing:
        raise BuildError(
            f"the templates folder {str(folder)!r} lacks {missing!r}; expected "
            f"{list(TEMPLATES)!r}; point the build at the project's templates/"
        )
    environment = Environment(
        loader=FileSystemLoader(folder),
        autoescape=select_autoescape(
            enabled_extensions=("html", "htm", "xml"),
            default_for_string=True,
            default=True,
        ),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["number"] = format_number
    return environment


def _render(environment: Environment, template: str, page: object) -> bytes:
    html = environment.get_template(template).render(frame=page.frame, page=page)
    return html.encode("utf-8")


def _write_page(
    writer: SiteWriter, assets: StaticAssets, path: str, html: bytes
) -> None:
    writer.write_page(path, html)
    assets.add_page(path, html)


def _write_layer(
    environment: Environment,
    site: pages.Site,
    position: int,
    writer: SiteWriter,
    assets: StaticAssets,
) -> list[str]:
    """Write a layer's images, unit pages, page and data; return its pages."""
    started = time.perf_counter()
    layer = site.atlas.layers[position]
    lay = site.layout.layers[position]
    written = []
    for unit, page in unit_pages(site, position):
        files = lay.files(unit)
        _write_unit_images(unit, lay, files, writer)
        html = _render(environment, "unit.html", page)
        _write_page(writer, assets, files.page, html)
        written.append(files.page)
    page = pages.layer_page(site, position)
    _write_page(writer, assets, lay.page, _render(environment, "layer.html", page))
    writer.write(lay.data, json_bytes(layer_document(layer, lay)))
    logger.info(
        "rendered layer %s: %d units in %.1f s",
        layer.info.name,
        len(layer.units),
        time.perf_counter() - started,
    )
    return [lay.page, *written]


def _write_unit_images(
    unit: UnitRecord, lay: LayerLayout, files: UnitFiles, writer: SiteWriter
) -> None:
    for key, path in files.views.items():
        writer.write_image(path, images.encode(images.to_image(unit.images[key])))
    for key, path in files.thumbs.items():
        thumb = images.thumbnail(unit.images[key])
        writer.write_image(path, images.encode(thumb, lossy=True))
    lossy = lay.sheet.smooth
    for path, examples in ((files.top, unit.top_k), (files.bottom, unit.bottom_k)):
        if path is not None:
            sheet = sheets.crop_sheet([ex.crop for ex in examples], lay.sheet)
            writer.write_image(path, images.encode(sheet, lossy=lossy))
    if files.context is not None and lay.context is not None:
        strip = context.context_sheet(unit.top_k, lay.context)
        lossy_context = lay.context.sheet.smooth
        writer.write_image(files.context, images.encode(strip, lossy=lossy_context))
    if files.grid is not None and lay.grid is not None:
        best = [ex.crop for ex in unit.top_k[:GRID_CROPS]]
        grid = sheets.crop_sheet(best, lay.grid)
        writer.write_image(files.grid, images.encode(grid, lossy=True))
    for heat, examples in (
        (files.top_heat, unit.top_k),
        (files.bottom_heat, unit.bottom_k),
    ):
        for method, path in heat.items():
            crops = [ex.crop for ex in examples]
            maps = [ex.heatmaps.get(method) for ex in examples]
            sheet = sheets.heat_sheet(crops, maps, lay.sheet)
            writer.write_image(path, images.encode(sheet, lossy=lossy))


def _log_summary(summary: SiteSummary, seconds: float) -> None:
    logger.info(
        "wrote %d pages and %d images in %.1f s; the site holds %d files "
        "(%.2f MB) in %s",
        summary.pages,
        summary.images,
        seconds,
        summary.files,
        summary.bytes / 1e6,
        summary.output,
    )
    if summary.files > WARN_FILES:
        logger.warning(
            "the site has %d files; static hosts often refuse more than %d: "
            "build fewer layers, or fewer views and heatmap methods per unit",
            summary.files,
            WARN_FILES,
        )


__all__ = ["SiteSummary", "make_environment", "render_site"]
