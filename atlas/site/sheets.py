"""Sheets: a unit's crops of one kind laid in one row of equal cells, and the
attribution heatmaps drawn over those crops, cell for cell.

One sheet per kind keeps the file count at a few per unit (C17), and equal
cells let a heatmap sheet sit under its crop sheet and line up.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from atlas.site.images import to_image

# Longer side, in pixels, that small crops are enlarged toward (by a whole
# factor): the size the layer grid shows them at.
SHEET_CELL = 40
# Longer side past which crops are shrunk: twice the unit page's 96 CSS px,
# sharp on a 2x screen and no heavier.
MAX_CELL = 192
# The same for the layer grid, which shows crops at 40 CSS px.
GRID_CELL = 2 * SHEET_CELL
# The widest a sheet is shown on a unit page: its main column at 1280 px.
SHEET_WIDTH = 800
# The gap between cells is this fraction of a cell, at least 1 pixel:
# wide enough to see, thin enough to read as a seam.
GAP_FRACTION = 1 / 20
# Anchors of the "inferno" colour map (Smith and van der Walt, matplotlib):
# dark where attribution is weak, bright where it is strong, in any scheme.
HEAT_COLOURS = np.array(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]],
    dtype=np.float64,
)
# How much of the crop shows through: dimmed, so that colour reads as heat.
CROP_SHOWING = 0.45

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SheetGeometry:
    """How crops of one layer are stored in a sheet."""

    cell: tuple[int, int]  # (height, width) of one stored cell
    gap: int  # transparent pixels between cells
    smooth: bool  # crops were shrunk smoothly: photographic, lossy is fine

    def size(self, count: int) -> tuple[int, int]:
        """The (height, width) of a sheet of `count` cells and their gaps."""
        height, width = self.cell
        return (height, count * width + max(0, count - 1) * self.gap)


def cell_size(crops: Sequence[np.ndarray]) -> tuple[int, int]:
    """The (height, width) of the largest crop of a layer; (1, 1) if none."""
    if not crops:
        return (1, 1)
    return (max(c.shape[0] for c in crops), max(c.shape[1] for c in crops))


def plan_sheet(crop: tuple[int, int], limit: int = MAX_CELL) -> SheetGeometry:
    """Cells for crops of size `crop`, none longer than `limit` pixels.

    Crops under `SHEET_CELL` grow by a whole factor, so a page can show
    them near that size without smoothing their pixels; crops over `limit`
    shrink smoothly to it; others keep their size.
    """
    longest = max(crop)
    if longest > limit:
        ratio = limit / longest
        cell = (max(1, round(crop[0] * ratio)), max(1, round(crop[1] * ratio)))
        smooth = True
    else:
        factor = max(1, SHEET_CELL // longest)
        cell = (crop[0] * factor, crop[1] * factor)
        smooth = False
    gap = max(1, round(max(cell) * GAP_FRACTION))
    return SheetGeometry(cell=cell, gap=gap, smooth=smooth)


def crop_sheet(crops: Sequence[np.ndarray], geometry: SheetGeometry) -> Image.Image:
    """Lay crops in one row of equal cells, in the order given."""
    return compose([to_image(crop) for crop in crops], geometry)


def heat_sheet(
    crops: Sequence[np.ndarray],
    heatmaps: Sequence[np.ndarray | None],
    geometry: SheetGeometry,
) -> Image.Image:
    """Each crop with its heatmap drawn over it; a missing heatmap leaves
    its cell empty, so cells still line up with the crop sheet."""
    tiles = [
        None if heat is None else heat_overlay(crop, heat)
        for crop, heat in zip(crops, heatmaps, strict=True)
    ]
    return compose(tiles, geometry)


def heat_overlay(crop: np.ndarray, heat: np.ndarray) -> Image.Image:
    """The crop, in dimmed grey, under the heatmap in a colour map.

    Opacity follows the heatmap, so strong attribution hides the crop and
    weak attribution lets it show: the shape and the place read together.
    """
    grey = np.asarray(to_image(crop).convert("L"), dtype=np.float64)
    if heat.shape != grey.shape:
        size = (grey.shape[1], grey.shape[0])
        heat = np.asarray(Image.fromarray(heat).resize(size, Image.NEAREST))
    level = heat.astype(np.float64) / 255.0
    base = (grey * CROP_SHOWING)[..., None]
    alpha = level[..., None]
    mixed = base * (1 - alpha) + colour_map(level) * alpha
    return Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8), "RGB")


def colour_map(level: np.ndarray) -> np.ndarray:
    """Map levels in [0, 1] to RGB through `HEAT_COLOURS`, linearly."""
    stops = np.linspace(0.0, 1.0, len(HEAT_COLOURS))
    return np.stack(
        [np.interp(level, stops, HEAT_COLOURS[:, c]) for c in range(3)], axis=-1
    )


def compose(
    tiles: Sequence[Image.Image | None], geometry: SheetGeometry
) -> Image.Image:
    """Paste tiles into equal cells with transparent gaps between them.

    The gaps (and empty cells) are transparent, so the page's own
    background separates the cells in light and dark mode alike.
    """
    height, width = geometry.cell
    present = [tile for tile in tiles if tile is not None]
    mode = "RGBA" if any(tile.mode != "L" for tile in present) else "LA"
    size = geometry.size(len(tiles))
    sheet = Image.new(mode, (size[1], size[0]), (0,) * len(mode))
    resample = Image.LANCZOS if geometry.smooth else Image.NEAREST
    for position, tile in enumerate(tiles):
        if tile is None:
            continue
        fitted = tile.resize((width, height), resample).convert(mode)
        sheet.paste(fitted, (position * (width + geometry.gap), 0))
    return sheet
