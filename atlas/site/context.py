"""The "in context" strip of a unit page: each top-k example's whole source
image, the unit's receptive-field box outlined and everything outside it
dimmed, as Network Dissection shows its top images.

Early layers see a few pixels; their crops say little until the reader
sees where in the image those pixels lie.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from atlas.records import Box, LayerRecord, TopKExample
from atlas.site.images import display_size, to_image
from atlas.site.sheets import GAP_FRACTION, SHEET_WIDTH, SheetGeometry, compose

# Longer side, in pixels, of one image in the strip: the unit page's crop
# size, so the strip reads as a second row beside the crops; less when the
# top-k would not fit the page's `SHEET_WIDTH` at that size.
CONTEXT_CELL = 96
# Outside the box a pixel moves halfway toward this grey, the mid-grey
# the page's light and dark schemes both set images against:
# dimmed = (pixel + DIM_GREY + 1) // 2, halves rounded up.
DIM_GREY = 128
# The box's 1-pixel outline: an amber that stands out on grey digits and
# on photographs, in light and dark mode alike.
OUTLINE = (255, 176, 0)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContextPlan:
    """How a layer's source images are fitted into the strip's cells."""

    source: tuple[int, int]  # (height, width) of the largest source image
    sheet: SheetGeometry  # the fitted cell, gap, smoothness

    @property
    def pixelated(self) -> bool:
        """Grown by a whole factor: the page keeps hard pixel edges."""
        return not self.sheet.smooth and self.sheet.cell[0] > self.source[0]


def plan_context(layer: LayerRecord) -> ContextPlan | None:
    """The strip's cells for `layer`; None for a dense layer (its box is
    the whole image) or one whose examples carry no source image."""
    if layer.info.kind != "conv":
        return None
    shapes = [
        ex.context.shape[:2]
        for unit in layer.units
        for ex in unit.top_k
        if ex.context is not None
    ]
    if not shapes:
        return None
    source = (max(s[0] for s in shapes), max(s[1] for s in shapes))
    count = max(len(unit.top_k) for unit in layer.units)
    for target in range(CONTEXT_CELL, 0, -1):
        plan = _plan(source, target)
        if plan.sheet.size(count)[1] <= SHEET_WIDTH:
            return plan
    return plan


def _plan(source: tuple[int, int], target: int) -> ContextPlan:
    """Cells about `target` pixels on their longer side."""
    shown = display_size(source[0], source[1], target)
    cell = (shown.height, shown.width)
    smooth = max(cell) < max(source)
    gap = max(1, round(max(cell) * GAP_FRACTION))
    return ContextPlan(source, SheetGeometry(cell=cell, gap=gap, smooth=smooth))


def has_context(examples: Sequence[TopKExample]) -> bool:
    """Whether a strip can be drawn: examples, each with its source image."""
    return bool(examples) and all(ex.context is not None for ex in examples)


def context_sheet(examples: Sequence[TopKExample], plan: ContextPlan) -> Image.Image:
    """One row of cells, best example first, each its image in context."""
    tiles = [
        context_tile(ex.context, ex.context_box or ex.box, plan) for ex in examples
    ]
    return compose(tiles, plan.sheet)


def context_tile(image: np.ndarray, box: Box, plan: ContextPlan) -> Image.Image:
    """`image` fitted to the plan's cell, dimmed outside `box` (clipped to
    the image), the clipped box outlined."""
    fitted = fit(image, plan)
    top, left, bottom, right = fitted_box(box, image.shape[:2], plan.sheet.cell)
    pixels = np.asarray(fitted, dtype=np.uint16)
    out = (pixels + DIM_GREY + 1) // 2
    out[top:bottom, left:right] = pixels[top:bottom, left:right]
    if bottom > top and right > left:
        _outline(out, (top, left, bottom, right))
    return Image.fromarray(out.astype(np.uint8), "RGB")


def fit(image: np.ndarray, plan: ContextPlan) -> Image.Image:
    """`image` as RGB at the plan's cell size: whole-factor nearest when
    grown, smooth when shrunk, as the crop sheets fit their crops."""
    height, width = plan.sheet.cell
    resample = Image.LANCZOS if plan.sheet.smooth else Image.NEAREST
    return to_image(image).convert("RGB").resize((width, height), resample)


def fitted_box(
    box: Box, source: tuple[int, int], cell: tuple[int, int]
) -> tuple[int, int, int, int]:
    """`box` clipped to a `source`-sized image and scaled to `cell`, as
    (top, left, bottom, right), half-open, in cell pixels."""
    (height, width), (cell_h, cell_w) = source, cell
    top = min(max(box.top, 0), height)
    bottom = min(max(box.bottom, 0), height)
    left = min(max(box.left, 0), width)
    right = min(max(box.right, 0), width)
    return (
        round(top * cell_h / height),
        round(left * cell_w / width),
        round(bottom * cell_h / height),
        round(right * cell_w / width),
    )


def _outline(pixels: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Paint the border pixels of the half-open `box`, in place."""
    top, left, bottom, right = box
    colour = np.array(OUTLINE, dtype=pixels.dtype)
    pixels[top, left:right] = colour
    pixels[bottom - 1, left:right] = colour
    pixels[top:bottom, left] = colour
    pixels[top:bottom, right - 1] = colour
