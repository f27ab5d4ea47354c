"""Inputs of the live probe: uploaded image files checked and fitted to the
model, RGBA frames turned into the model's channels, images sent back as
PNG."""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from atlas.data_folder import PIL_MODES, fit_image
from atlas.errors import DataError

# An upload larger than this many pixels is refused before decoding: a
# 50-megapixel photo is large; a small file claiming more is a bomb.
MAX_PIXELS = 50_000_000
# The formats Pillow decodes that an upload may be, by Pillow's name.
IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "GIF"})
# ITU-R BT.601 luma in 1/65536ths, the fixed-point weights of Pillow's "L"
# conversion, so that a webcam frame and an upload turn gray alike.
LUMA = np.array([19595, 38470, 7471], np.uint32)

_UNREADABLE = (
    UnidentifiedImageError,
    Image.DecompressionBombWarning,
    Image.DecompressionBombError,
    OSError,
    SyntaxError,
    ValueError,
)

logger = logging.getLogger(__name__)


class InputError(DataError):
    """An input the probe cannot use; the message says why and what to send."""


def decode_upload(data: bytes, shape: tuple[int, int, int], resize: str) -> np.ndarray:
    """An uploaded image file as uint8 (height, width, channels) of the model."""
    if not data:
        raise InputError("the upload is empty; choose a JPEG, PNG, WebP or BMP image.")
    image = _open(data)
    try:
        if image.width * image.height > MAX_PIXELS:
            raise InputError(
                f"the image is {image.width}x{image.height} pixels, more than "
                f"{MAX_PIXELS:,}; scale it down before uploading."
            )
        image.load()
        mode = _mode(shape[2])
        return fit_image(image.convert(mode), shape, resize)
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(
            f"the {image.format} image cannot be decoded ({exc}); it may be "
            "truncated. Save it again or choose another image."
        ) from None
    finally:
        image.close()


def rgba_to_pixels(rgba: np.ndarray, channels: int) -> np.ndarray:
    """Browser RGBA pixels as the model's channels: luma, RGB or RGBA."""
    if channels == 4:
        return rgba
    if channels == 3:
        return rgba[..., :3]
    if channels == 1:
        weighted = rgba[..., :3].astype(np.uint32) @ LUMA
        return ((weighted + 0x8000) >> 16).astype(np.uint8)[..., None]
    raise InputError(_channels_message(channels))


def pixels_to_rgba(pixels: np.ndarray) -> np.ndarray:
    """uint8 (h, w, 1 | 3 | 4) pixels as RGBA, for the browser's canvas."""
    channels = pixels.shape[-1]
    if channels == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    if pixels.shape[-1] == 3:
        alpha = np.full((*pixels.shape[:2], 1), 255, np.uint8)
        pixels = np.concatenate([pixels, alpha], axis=-1)
    return pixels


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 (h, w) or (h, w, 1 | 3 | 4) pixels as PNG file bytes."""
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def check_channels(channels: int) -> None:
    """Refuse, at start-up, a model whose input a browser cannot give."""
    if channels not in PIL_MODES:
        raise InputError(_channels_message(channels))


def _open(data: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except _UNREADABLE as exc:
        raise InputError(
            f"the upload ({len(data):,} bytes starting {data[:8]!r}) is not an "
            f"image the probe reads; choose a JPEG, PNG, WebP, BMP or GIF file."
            f" ({type(exc).__name__})"
        ) from None
    if image.format not in IMAGE_FORMATS:
        image.close()
        raise InputError(
            f"the upload is a {image.format} file; choose a JPEG, PNG, WebP, "
            "BMP or GIF image."
        )
    return image


def _mode(channels: int) -> str:
    if channels not in PIL_MODES:
        raise InputError(_channels_message(channels))
    return PIL_MODES[channels]


def _channels_message(channels: int) -> str:
    # LIMITATION: models whose input has 2 or more than 4 channels cannot
    # be probed live; a browser only gives grayscale, RGB or RGBA images.
    return (
        f"the model takes {channels}-channel images; the live probe feeds "
        "1 (grayscale), 3 (RGB) or 4 (RGBA) channels from the browser."
    )
