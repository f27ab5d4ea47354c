"""Image files for mining: finding them, checking each one before it is
batched, decoding and fitting it to the model's input size and channels."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from atlas.output import MARKER

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
# Pillow's modes for 16-bit grayscale PNGs ("I" in older Pillow versions).
DEEP_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N"})
GRAY_MODES = frozenset({"1", "L", "LA", "F"}) | DEEP_MODES
# Modes with a fourth (alpha) channel, what a 4-channel model reads.
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
# 16-bit pixels map to 8 bits by the full range: 65535 / 257 = 255.
DEEP_TO_8_BIT = 257
# Files checked at once: decoding releases the GIL, so threads overlap.
CHECK_WORKERS = min(8, os.cpu_count() or 1)
CHECK_CHUNK = 256
_DECODE_ERRORS = (
    UnidentifiedImageError,
    Image.DecompressionBombError,
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
)


@dataclass(frozen=True)
class Skipped:
    """A file the dataset could not read, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Folder:
    """The readable images of a folder, their labels and the skipped files."""

    files: list[Path]
    sources: list[str]
    labels: list[str | None]
    class_names: list[str] | None
    skipped: list[Skipped]
    colour: int  # readable images stored in colour
    deep: int = 0  # readable images with 16-bit pixels
    alpha: list[bool] | None = None  # per readable image: has transparency


def scan_folder(root: Path, limit: int = 0) -> Folder:
    """Every image under `root`, each decoded once to check it is readable;
    with `limit`, only as many files as give that many readable images.

    Files in a sub-folder are labelled with its top-level name, as Keras's
    `image_dataset_from_directory` does; the classes are those names sorted.
    """
    files = sorted(
        (p for p in _walk(root) if p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: p.relative_to(root).as_posix(),
    )
    files = [p for p in files if p.is_file()]
    # With a limit, the files spread evenly over the folder are checked
    # first, so that every class contributes; files spread ever more
    # finely stand in for unreadable ones. Kept files go back in path order.
    if limit and limit < len(files):
        logger.info(
            "data.limit = %d: mining %d of the %d image files, evenly spaced",
            limit,
            limit,
            len(files),
        )
    order = _spread_order(len(files), limit)
    good, skipped, colour, deep, alpha = [], [], 0, 0, []
    checked = _checked([files[i] for i in order], limit)
    position = {file: index for index, file in enumerate(files)}
    kept = sorted(checked, key=lambda pair: position[pair[0]])
    for file, (reason, mode) in kept:
        if reason is None:
            good.append(file)
            colour += mode not in GRAY_MODES
            deep += mode in DEEP_MODES
            alpha.append(mode in ALPHA_MODES)
            continue
        logger.warning("skipping %s: %s", file, reason)
        skipped.append(Skipped(file.relative_to(root).as_posix(), reason))
    classes = sorted({_class_of(root, f) for f in files} - {None})
    return Folder(
        files=good,
        sources=[f.relative_to(root).as_posix() for f in good],
        labels=[_class_of(root, f) for f in good] if classes else [None] * len(good),
        class_names=classes or None,
        skipped=skipped,
        colour=colour,
        deep=deep,
        alpha=alpha,
    )


def _walk(root: Path):
    """Every file under `root`, leaving out hidden folders (checkpoints,
    caches) and atlas outputs, whose own images are not data."""
    for folder, subfolders, names in os.walk(root):
        here = Path(folder)
        kept = []
        for name in sorted(subfolders):
            if name.startswith("."):
                continue
            if (here / name / MARKER).is_file():
                logger.info("not reading %s as data: an atlas output", here / name)
                continue
            kept.append(name)
        subfolders[:] = kept
        yield from (here / name for name in names)


def evenly_spaced(count: int, limit: int) -> list[int]:
    """`limit` indices spread evenly over range(count), first and last
    included; all of them without a limit or when fewer."""
    if not limit or limit >= count:
        return list(range(count))
    return np.linspace(0, count - 1, limit).round().astype(int).tolist()


def _spread_order(count: int, limit: int) -> list[int]:
    """range(count) with `limit` evenly spaced indices first, then those
    of twice as fine a spacing, and so on."""
    if not limit:
        return list(range(count))
    order: list[int] = []
    seen: set[int] = set()
    wanted = limit
    while len(order) < count:
        for index in evenly_spaced(count, wanted):
            if index not in seen:
                seen.add(index)
                order.append(index)
        wanted *= 2
    return order


def check_image(file: Path) -> tuple[str | None, str]:
    """(why the file cannot be read, or None; its colour mode)."""
    try:
        with Image.open(file) as image:
            image.load()
            return None, image.mode
    except _DECODE_ERRORS as exc:
        text = str(exc) or "no detail"
        return f"{type(exc).__name__}: {text}", ""


def read_image(path: Path, shape: Sequence[int], resize: str) -> np.ndarray:
    """An image file as uint8 (height, width, channels) of the model input;
    16-bit pixels are reduced to 8 bits first (`to_8_bit`)."""
    channels = shape[2]
    with Image.open(path) as image:
        if image.mode in DEEP_MODES:
            image = Image.fromarray(to_8_bit(np.asarray(image)))
        image = image.convert(PIL_MODES[channels])
        return fit_image(image, shape, resize)


def to_8_bit(pixels: np.ndarray) -> np.ndarray:
    """16-bit pixels as uint8 by the full 16-bit range: value / 257,
    rounded, so 0 stays black and 65535 becomes 255.

    Pillow's own conversion of a 16-bit image clips every value above 255
    to white instead.
    """
    scaled = np.rint(pixels.astype(np.float64) / DEEP_TO_8_BIT)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def fit_image(image: Image.Image, shape: Sequence[int], resize: str) -> np.ndarray:
    """Resize a PIL image to (height, width), centre-cropped first for "crop"."""
    height, width = shape[:2]
    if resize == "crop":
        image = _centre_crop(image, width / height)
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    return pixels[..., None] if pixels.ndim == 2 else pixels


def fit_array(pixels: np.ndarray, shape: Sequence[int], resize: str) -> np.ndarray:
    """Resize one (h, w, c) array image like an image file, channel by channel."""
    if pixels.shape[:2] == tuple(shape[:2]):
        return pixels
    if pixels.dtype == np.uint8 and pixels.shape[2] in PIL_MODES:
        mode = PIL_MODES[pixels.shape[2]]
        image = Image.fromarray(np.squeeze(pixels, axis=2) if mode == "L" else pixels)
        return fit_image(image.convert(mode), shape, resize)
    planes = [
        fit_image(Image.fromarray(plane.astype(np.float32)), shape, resize)
        for plane in np.moveaxis(pixels, 2, 0)
    ]
    return np.concatenate(planes, axis=2)


def _checked(files: list[Path], limit: int):
    """(file, check) in file order, stopping once `limit` files are good."""
    good = 0
    with ThreadPoolExecutor(CHECK_WORKERS) as pool:
        for start in range(0, len(files), CHECK_CHUNK):
            chunk = files[start : start + CHECK_CHUNK]
            for file, check in zip(chunk, pool.map(check_image, chunk), strict=True):
                yield file, check
                good += check[0] is None
                if limit and good >= limit:
                    return


def _class_of(root: Path, file: Path) -> str | None:
    parts = file.relative_to(root).parts
    return parts[0] if len(parts) > 1 else None


def _centre_crop(image: Image.Image, aspect: float) -> Image.Image:
    w, h = image.size
    if w / h > aspect:
        new_w = max(1, round(h * aspect))
        left = (w - new_w) // 2
        return image.crop((left, 0, left + new_w, h))
    new_h = max(1, round(w / aspect))
    top = (h - new_h) // 2
    return image.crop((0, top, w, top + new_h))
