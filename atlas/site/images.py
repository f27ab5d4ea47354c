"""Image files of the site: checking arrays, encoding them, and the sizes
pages show them at.

Pixel-exact images (synthesized images, crops grown by a whole factor) are
optimized PNG; images shrunk smoothly for display are lossy WebP. Neither
carries a timestamp, so the same array always gives the same bytes.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from atlas.errors import BuildError
from atlas.records import AtlasRecord, TopKExample

CHANNELS = (1, 3, 4)
# Longer side, in CSS pixels, of a synthesized image on the layer grid.
THUMB = 96
# A synthesized image longer than this gets a separate, smaller thumbnail
# for the layer grid: twice `THUMB`, sharp on a 2x screen.
THUMB_LIMIT = 2 * THUMB
# WebP quality for smoothly shrunk images: artefacts stay below what a
# thumbnail shows, at about a tenth of the PNG's bytes.
WEBP_QUALITY = 85

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


def check_heatmap(array: np.ndarray, what: str) -> None:
    """Raise `BuildError` unless `array` is a uint8 (H, W) magnitude map."""
    shape = getattr(array, "shape", None)
    dtype = getattr(array, "dtype", None)
    if dtype == np.uint8 and shape is not None and len(shape) == 2 and min(shape):
        return
    raise BuildError(
        f"{what}: expected a uint8 array of shape (H, W), got {dtype} of "
        f"shape {shape}; scale heatmaps to 0-255 uint8 before rendering"
    )


def check_atlas(atlas: AtlasRecord) -> None:
    """Check every image, crop and heatmap of `atlas` before any file is
    written, so that a bad array cannot leave a half-rendered site; the
    message names the layer, unit and image."""
    for layer in atlas.layers:
        name = layer.info.name
        for unit in layer.units:
            where = f"layer {name!r} unit {unit.index}"
            for view, array in unit.images.items():
                check_array(array, f"{where} image {view!r}")
            _check_examples(unit.top_k, f"{where} top-k example")
            _check_examples(unit.bottom_k, f"{where} bottom-k example")


def to_image(array: np.ndarray) -> Image.Image:
    """A Pillow image of a uint8 array: "L" for 1 channel, else "RGB"."""
    if array.ndim == 2 or array.shape[2] == 1:
        return Image.fromarray(array.reshape(array.shape[:2]), mode="L")
    # LIMITATION: a 4-channel image shows only its first three channels,
    # as RGB; the fourth channel is not displayed anywhere on the site.
    return Image.fromarray(np.ascontiguousarray(array[..., :3]), mode="RGB")


def encode(image: Image.Image, lossy: bool = False) -> bytes:
    """PNG bytes, or lossy WebP bytes for smoothly resampled images."""
    buffer = io.BytesIO()
    if lossy:
        image.save(buffer, format="WEBP", quality=WEBP_QUALITY, method=6)
    else:
        image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def extension(lossy: bool) -> str:
    """The file extension `encode` gives with the same `lossy`."""
    return "webp" if lossy else "png"


def needs_thumbnail(array: np.ndarray) -> bool:
    """True when the grid should not load the full synthesized image."""
    return max(array.shape[:2]) > THUMB_LIMIT


def thumbnail(array: np.ndarray) -> Image.Image:
    """The image shrunk smoothly to `THUMB_LIMIT` pixels on its longer side."""
    image = to_image(array)
    shown = display_size(image.height, image.width, THUMB_LIMIT)
    return image.resize((shown.width, shown.height), Image.LANCZOS)


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


def _check_examples(examples: list[TopKExample], what: str) -> None:
    for rank, example in enumerate(examples, start=1):
        check_array(example.crop, f"{what} {rank} crop")
        if example.context is not None:
            check_array(example.context, f"{what} {rank} source image")
        for method, heat in example.heatmaps.items():
            check_heatmap(heat, f"{what} {rank} heatmap {method!r}")
