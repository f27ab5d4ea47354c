"""The `<img>` of each synthesized image and sheet: its href from the page,
its alternative text and the size the page shows it at."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from atlas.records import UnitRecord
from atlas.site import images
from atlas.site.context import ContextPlan
from atlas.site.layout import LayerLayout, UnitFiles
from atlas.site.paths import relative
from atlas.site.sheets import SHEET_CELL, SHEET_WIDTH, SheetGeometry

# Longer side, in CSS pixels, of images on the layer grid and the unit page.
THUMB = images.THUMB
THUMB_CROP = SHEET_CELL
LARGE = 320
SMALL = 160  # the unit page's views after the main one
LARGE_CROP = 96
# The grid shows a unit's best few crops; its page shows all of them.
GRID_CROPS = 5

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Picture:
    """One `<img>`: its source, alternative text and displayed size."""

    src: str
    alt: str
    width: int
    height: int
    pixelated: bool  # upscaled by a whole factor: keep hard pixel edges
    clipped: bool = False  # shows only the left part of a sheet


def view(
    unit: UnitRecord, files: UnitFiles, key: str, here: str, alt: str, target: int
) -> Picture:
    """The unit's view `key`, about `target` px on its longer side.

    The layer grid (a small `target`) reads a large view's thumbnail.
    """
    height, width = unit.images[key].shape[:2]
    shown = images.display_size(height, width, target)
    small = target <= THUMB and key in files.thumbs
    path = files.thumbs[key] if small else files.views[key]
    return Picture(
        src=relative(path, here),
        alt=alt,
        width=shown.width,
        height=shown.height,
        pixelated=shown.pixelated,
    )


def page_sheet(
    path: str, count: int, geometry: SheetGeometry, here: str, alt: str
) -> Picture:
    """A whole sheet of `count` crops, as the unit page shows it: crops
    `LARGE_CROP` large, or smaller so the sheet fits `SHEET_WIDTH`."""
    room = (SHEET_WIDTH - max(0, count - 1) * geometry.gap) // max(count, 1)
    target = max(1, min(LARGE_CROP, room))
    return _sheet(path, count, geometry, here, alt, target)


def context_sheet(
    path: str, count: int, plan: ContextPlan, here: str, alt: str
) -> Picture:
    """The "in context" strip at its stored size, or smaller so that it
    fits `SHEET_WIDTH`; pixelated only when shown at that size."""
    geometry = plan.sheet
    room = (SHEET_WIDTH - max(0, count - 1) * geometry.gap) // max(count, 1)
    target = max(1, min(max(geometry.cell), room))
    picture = _sheet(path, count, geometry, here, alt, target)
    full = picture.height == geometry.cell[0]
    return Picture(
        src=picture.src,
        alt=alt,
        width=picture.width,
        height=picture.height,
        pixelated=plan.pixelated and full,
    )


def grid_sheet(
    lay: LayerLayout, files: UnitFiles, count: int, here: str, alt: str
) -> Picture | None:
    """The best `GRID_CROPS` crops on the layer grid.

    Large crops have a small sheet of their own; small ones share the
    unit page's sheet, cut to its left end.
    """
    shown = min(count, GRID_CROPS)
    if files.grid is not None and lay.grid is not None:
        return _sheet(files.grid, shown, lay.grid, here, alt, THUMB_CROP)
    if files.top is None:
        return None
    sheet = _sheet(files.top, count, lay.sheet, here, alt, THUMB_CROP)
    if count <= GRID_CROPS:
        return sheet
    scale = sheet.height / lay.sheet.cell[0]
    width = round(lay.sheet.size(GRID_CROPS)[1] * scale)
    return Picture(
        src=sheet.src,
        alt=alt,
        width=width,
        height=sheet.height,
        pixelated=sheet.pixelated,
        clipped=True,
    )


def _sheet(
    path: str, count: int, geometry: SheetGeometry, here: str, alt: str, target: int
) -> Picture:
    """A sheet with each crop shown about `target` pixels large."""
    stored = geometry.cell
    shown = images.display_size(stored[0], stored[1], target)
    scale = shown.height / stored[0]
    return Picture(
        src=relative(path, here),
        alt=alt,
        width=round(geometry.size(count)[1] * scale),
        height=shown.height,
        pixelated=shown.pixelated,
    )
