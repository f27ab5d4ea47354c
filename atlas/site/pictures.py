"""The `<img>` of each synthesized image and top-k sheet: its href from the
page, its alternative text and the size the page shows it at."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from atlas.records import UnitRecord
from atlas.site import images
from atlas.site.manifest import LayerLayout
from atlas.site.paths import relative

# Longer side, in CSS pixels, of images on the layer grid and the unit page.
THUMB = 96
THUMB_CROP = images.SHEET_CELL
LARGE = 320
LARGE_CROP = 96
# A unit page with more examples than this shows its crops half as large.
LARGE_CROP_COUNT = 10
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
    clipped: bool = False  # shows only the left part of a top-k sheet


def synthesized(
    layer: str,
    lay: LayerLayout,
    unit: UnitRecord,
    preset: str,
    here: str,
    *,
    large: bool = False,
) -> Picture:
    """The unit's image under `preset`, as a thumbnail or large."""
    height, width = unit.images[preset].shape[:2]
    shown = images.display_size(height, width, LARGE if large else THUMB)
    return Picture(
        src=relative(lay.unit_image(unit.index, preset), here),
        alt=(
            f"Synthesized image of unit {unit.index} of layer {layer}, preset {preset}"
        ),
        width=shown.width,
        height=shown.height,
        pixelated=shown.pixelated,
    )


def page_sheet(
    layer: str, lay: LayerLayout, unit: UnitRecord, cell: tuple[int, int], here: str
) -> Picture | None:
    """The whole top-k sheet, for the unit's own page."""
    count = len(unit.top_k)
    target = LARGE_CROP if count <= LARGE_CROP_COUNT else LARGE_CROP // 2
    return _sheet(layer, lay, unit, cell, here, target)


def grid_sheet(
    layer: str, lay: LayerLayout, unit: UnitRecord, cell: tuple[int, int], here: str
) -> Picture | None:
    """The top-k sheet on the layer grid, cut to its best `GRID_CROPS`."""
    sheet = _sheet(layer, lay, unit, cell, here, THUMB_CROP)
    count = len(unit.top_k)
    if sheet is None or count <= GRID_CROPS:
        return sheet
    scale = sheet.height / images.sheet_cell(cell)[0]
    width = round(images.sheet_size(cell, GRID_CROPS)[1] * scale)
    alt = (
        f"The {GRID_CROPS} dataset crops, of {count}, that most excite unit "
        f"{unit.index} of layer {layer}, best first from the left"
    )
    return replace(sheet, alt=alt, width=width, clipped=True)


def _sheet(
    layer: str,
    lay: LayerLayout,
    unit: UnitRecord,
    cell: tuple[int, int],
    here: str,
    target: int,
) -> Picture | None:
    """The whole sheet, each crop shown about `target` pixels large."""
    count = len(unit.top_k)
    if not count:
        return None
    stored = images.sheet_cell(cell)
    shown = images.display_size(stored[0], stored[1], target)
    scale = shown.height / stored[0]
    return Picture(
        src=relative(lay.unit_sheet(unit.index), here),
        alt=(
            f"The {count} dataset crops that most excite unit {unit.index} of "
            f"layer {layer}, best first from the left"
        ),
        width=round(images.sheet_size(cell, count)[1] * scale),
        height=shown.height,
        pixelated=shown.pixelated,
    )
