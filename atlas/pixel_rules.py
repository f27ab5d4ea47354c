"""How stored pixels become the model's: the array's shape, integer
depths (8- and 16-bit), float ranges and channel counts, each refused or
converted with a message that names the value and the fix."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from atlas.data_arrays import ArrayFile
from atlas.data_folder import to_8_bit
from atlas.errors import DataError

logger = logging.getLogger(__name__)

# ITU-R BT.601 luma weights, which PIL's "L" conversion also uses.
LUMA = np.array([0.299, 0.587, 0.114], np.float32)
# Leading images checked for values that look mis-scaled: read from the start
# of the file (of a compressed member's stream), so opening stays cheap.
WARN_SAMPLE = 64


def check_array(array: ArrayFile, shape) -> None:
    dims = array.shape
    if len(dims) == 3:
        raise DataError(
            f"'{array.path}' images have shape {dims}; expected (N, height, "
            f"width, channels). Add the channel axis: images[..., None]."
        )
    if len(dims) != 4 or array.dtype.kind not in "uif":
        raise DataError(
            f"'{array.path}' images have shape {dims} and dtype {array.dtype}; "
            f"expected numbers shaped (N, height, width, channels)."
        )
    if len(array) == 0:
        raise DataError(f"'{array.path}' holds no images; give at least one.")


def as_pixels(rows: np.ndarray, path: Path) -> np.ndarray:
    """uint8 and float rows as they are; uint16 rows are 16-bit pixels,
    reduced to 8 bits like 16-bit image files; other integers must be
    8-bit values."""
    if rows.dtype == np.uint8 or rows.dtype.kind == "f":
        return rows
    if rows.dtype == np.uint16:
        return to_8_bit(rows)
    if rows.dtype == np.bool_ or rows.min(initial=0) < 0 or rows.max(initial=0) > 255:
        raise DataError(
            f"'{path}' holds {rows.dtype} images with values from "
            f"{rows.min()} to {rows.max()}; integer images must be 0-255 pixels "
            f"(or uint16 for 16-bit pixels). Save uint8 or uint16 pixels, or "
            f"floats already in model.input_range."
        )
    return rows.astype(np.uint8)


def plan_channels(have: int, channels: int, where: str) -> None:
    """Log the conversion of `have` channels to the model's, or refuse it."""
    if have == channels:
        return
    if (have, channels) == (3, 1):
        logger.info("%s: converting RGB images to grayscale for the model", where)
    elif (have, channels) == (1, 3):
        logger.info("%s: repeating grayscale images to RGB for the model", where)
    else:
        raise DataError(
            f"{where}: images have {have} channels but the model takes "
            f"{channels}; convert the data to {channels} channels."
        )


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """RGB to luma or gray to RGB, as `plan_channels` allowed."""
    have = images.shape[-1]
    if have == channels:
        return images
    if have == 1:
        return np.repeat(images, channels, axis=-1)
    gray = (images.astype(np.float32) @ LUMA)[..., None]
    return gray if images.dtype.kind == "f" else np.rint(gray).astype(images.dtype)


def warn_float_range(array: ArrayFile, input_range) -> None:
    """Float images are taken as already scaled: say so when they look not."""
    if array.dtype.kind != "f":
        return
    sample = array.head(WARN_SAMPLE)
    low, high = input_range
    span = high - low
    if sample.min() < low - span or sample.max() > high + span:
        logger.warning(
            "%s: float images range from %g to %g but model.input_range is "
            "[%g, %g]; float images are used as they are, so scale them to "
            "the model's range or save uint8 pixels",
            array.path,
            sample.min(),
            sample.max(),
            low,
            high,
        )


def warn_shallow(array: ArrayFile) -> None:
    """uint16 images are 16-bit pixels: say so when they hold 8-bit values,
    which would come out nearly black."""
    sample = array.head(WARN_SAMPLE)
    if sample.size and sample.max() <= 255:
        logger.warning(
            "%s: uint16 images whose values are at most %d are read as 16-bit "
            "pixels and come out nearly black; if they are 8-bit pixels, save "
            "them as uint8 (x.astype(np.uint8))",
            array.path,
            sample.max(),
        )


def log_deep(path: Path, count: int) -> None:
    logger.info(
        "%s: reducing %d 16-bit image(s) to 8 bits (value / 257, rounded)",
        path,
        count,
    )
