"""PNG encoding of unit images and top-k sheets, and their display sizes.

Arrays arrive as uint8 (H, W, C); PNGs carry no timestamp, so the same
array always gives the same bytes.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from atlas.errors import BuildError
from atlas.records import AtlasRecord

CHANNELS = (1, 3, 4)
# Longer side, in pixels, that small crops are enlarged toward (by a whole
# factor) inside a sheet: the size the layer grid shows them at.
SHEET_CELL = 40
# The gap between sheet cells is this fraction of a cell, at least 1 pixel:
# wide enough to see, thin enough to read as a seam.
GAP_FRACTION = 1 / 20

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Display:
    """How large a page shows an image, in CSS pixels."""

    width: int
    height: int
    pixelated: bool  # upscaled by an integer factor: show hard pixel edges


def check_array(array: np.ndarray, what: str) -> None:
    """Raise `BuildError` unless `array` is a uint8 (H, W[, C]) image."""
    shape = getattr(array, "shape", None)
    dtype = getattr(array, "dtype", None)
    ok_rank = shape is not None and len(shape) in (2, 3)
    ok_channels = ok_rank and (len(shape) == 2 or shape[2] in CHANNELS)
    ok_size = ok_rank and shape[0] > 0 and shape[1] > 0
    if dtype == np.uint8 and ok_channels and ok_size:
        return
    raise BuildError(
        f"{what}: expected a uint8 array of shape (H, W, C) with C in "
        f"{CHANNELS}, got {dtype} of shape {shape}; convert images to uint8 "
        "before rendering"
    )


def check_atlas(atlas: AtlasRecord) -> None:
    """Check every image and crop of `atlas` before any file is written.

    A bad array would otherwise fail midway through the write, leaving a
    half-rendered site; the message names the layer, unit and image.
    """
    for layer in atlas.layers:
        name = layer.info.name
        for unit in layer.units:
            where = f"layer {name!r} unit {unit.index}"
            for preset, array in unit.images.items():
                check_array(array, f"{where} image of preset {preset!r}")
            for rank, example in enumerate(unit.top_k, start=1):
                check_array(example.crop, f"{where} top-k example {rank} crop")


def to_image(array: np.ndarray) -> Image.Image:
    """A Pillow image of a uint8 array: "L" for 1 channel, else "RGB"."""
    if array.ndim == 2 or array.shape[2] == 1:
        return Image.fromarray(array.reshape(array.shape[:2]), mode="L")
    # LIMITATION: a 4-channel image shows only its first three channels,
    # as RGB; the fourth channel is not displayed anywhere on the site.
    return Image.fromarray(np.ascontiguousarray(array[..., :3]), mode="RGB")


def png_bytes(image: Image.Image) -> bytes:
    """Encode as PNG; Pillow writes no time chunk, so bytes are stable."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def cell_size(crops: Sequence[np.ndarray]) -> tuple[int, int]:
    """The (height, width) of one sheet cell: the largest crop of a layer."""
    if not crops:
        return (1, 1)
    return (max(c.shape[0] for c in crops), max(c.shape[1] for c in crops))


def sheet_cell(cell: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) of one cell as stored in a sheet.

    Crops smaller than `SHEET_CELL` are enlarged by a whole factor, so a
    page can show them near that size without smoothing their pixels.
    """
    factor = max(1, SHEET_CELL // max(cell))
    return (cell[0] * factor, cell[1] * factor)


def sheet_gap(cell: tuple[int, int]) -> int:
    """Transparent pixels between two cells of a sheet."""
    return max(1, round(max(sheet_cell(cell)) * GAP_FRACTION))


def sheet_size(cell: tuple[int, int], count: int) -> tuple[int, int]:
    """The (height, width) of a sheet of `count` cells and the gaps between."""
    height, width = sheet_cell(cell)
    return (height, count * width + max(0, count - 1) * sheet_gap(cell))


def topk_sheet(crops: Sequence[np.ndarray], cell: tuple[int, int]) -> Image.Image:
    """Lay crops in one row of equal cells, best first, with clear gaps.

    Each crop is resized to the layer's cell; the gaps are transparent, so
    the page's own background separates the crops in light and dark mode.
    """
    height, width = sheet_cell(cell)
    gap = sheet_gap(cell)
    tiles = [to_image(crop) for crop in crops]
    mode = "RGBA" if any(tile.mode == "RGB" for tile in tiles) else "LA"
    size = sheet_size(cell, len(tiles))
    sheet = Image.new(mode, (size[1], size[0]), (0,) * len(mode))
    for position, tile in enumerate(tiles):
        fitted = tile.resize((width, height), Image.NEAREST).convert(mode)
        sheet.paste(fitted, (position * (width + gap), 0))
    return sheet


def display_size(height: int, width: int, target: int) -> Display:
    """Scale to about `target` px on the longer side.

    Small images grow by a whole factor so every source pixel stays a
    square of equal size; large ones shrink smoothly to fit.
    """
    longest = max(height, width)
    if longest <= target:
        factor = target // longest
        return Display(width * factor, height * factor, factor > 1)
    ratio = target / longest
    return Display(max(1, round(width * ratio)), max(1, round(height * ratio)), False)
