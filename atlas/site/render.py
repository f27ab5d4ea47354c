"""Rendering an `AtlasRecord` into a static site: pages, images, manifest.

`render_site` plans every path first, then writes each file atomically
inside the output folder. Templates receive the frozen dataclasses that
`atlas.site.pages` builds and only lay them out.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from atlas.errors import BuildError
from atlas.records import AtlasRecord, LayerRecord, UnitRecord
from atlas.site import images, pages
from atlas.site.manifest import (
    LayerLayout,
    SiteLayout,
    SiteSummary,
    SiteWriter,
    build_manifest,
    manifest_bytes,
    ordered_units,
    plan_layout,
)

TEMPLATES = ("base.html", "macros.html", "index.html", "layer.html", "unit.html")
STATIC = "static"
# Static hosts cap a deployment at 4,000 to 20,000 files.
WARN_FILES = 20_000

logger = logging.getLogger(__name__)


def render_site(atlas: AtlasRecord, output: Path, templates: Path) -> SiteSummary:
    """Write the whole site for `atlas` into the existing folder `output`."""
    started = time.perf_counter()
    environment = make_environment(templates)
    layout = plan_layout(atlas)
    images.check_atlas(atlas)
    writer = SiteWriter(output)

    _copy_static(Path(templates) / STATIC, writer)
    index = pages.index_page(atlas, layout)
    writer.write_page("index.html", _render(environment, "index.html", index))
    for layer, lay in zip(atlas.layers, layout.layers, strict=True):
        _write_layer(environment, atlas, layer, lay, writer)
    writer.write("manifest.json", manifest_bytes(build_manifest(atlas, layout)))

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
    environment.filters["number"] = pages.format_number
    return environment


def _render(environment: Environment, template: str, page: pages.Page) -> bytes:
    html = environment.get_template(template).render(frame=page.frame, page=page)
    return html.encode("utf-8")


def _copy_static(folder: Path, writer: SiteWriter) -> None:
    if not folder.is_dir():
        raise BuildError(
            f"the templates folder has no {STATIC}/ at {str(folder)!r}; "
            "expected the stylesheet there; restore templates/static/"
        )
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        writer.write(f"{STATIC}/{relative}", path.read_bytes())


def _write_layer(
    environment: Environment,
    atlas: AtlasRecord,
    layer: LayerRecord,
    lay: LayerLayout,
    writer: SiteWriter,
) -> None:
    started = time.perf_counter()
    units = ordered_units(layer)
    cell = images.cell_size([ex.crop for unit in units for ex in unit.top_k])
    for position, unit in enumerate(units):
        _write_unit_images(unit, lay, cell, writer)
        neighbours = (
            units[position - 1] if position > 0 else None,
            units[position + 1] if position + 1 < len(units) else None,
        )
        page = pages.unit_page(atlas, layer, lay, unit, neighbours, cell)
        html = _render(environment, "unit.html", page)
        writer.write_page(lay.unit_page(unit.index), html)

    page = pages.layer_page(atlas, layer, lay, cell)
    writer.write_page(lay.page, _render(environment, "layer.html", page))
    logger.info(
        "rendered layer %s: %d units in %.1f s",
        layer.info.name,
        len(units),
        time.perf_counter() - started,
    )


def _write_unit_images(
    unit: UnitRecord, lay: LayerLayout, cell: tuple[int, int], writer: SiteWriter
) -> None:
    for preset, array in unit.images.items():
        data = images.png_bytes(images.to_image(array))
        writer.write_image(lay.unit_image(unit.index, preset), data)
    if unit.top_k:
        sheet = images.topk_sheet([ex.crop for ex in unit.top_k], cell)
        writer.write_image(lay.unit_sheet(unit.index), images.png_bytes(sheet))


def _log_summary(summary: SiteSummary, seconds: float) -> None:
    logger.info(
        "wrote %d pages, %d images, %d files (%.1f MB) to %s in %.1f s",
        summary.pages,
        summary.images,
        summary.files,
        summary.bytes / 1e6,
        summary.output,
        seconds,
    )
    if summary.files > WARN_FILES:
        logger.warning(
            "the site has %d files; many static hosts refuse more than %d",
            summary.files,
            WARN_FILES,
        )


__all__ = ["SiteLayout", "SiteSummary", "SiteWriter", "make_environment", "render_site"]
