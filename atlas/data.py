"""Datasets for mining: an image folder (class sub-folders give labels) or a
`.npy`/`.npz` array, decoded, resized and scaled to the model's input."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from atlas.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
_IMAGE_KEYS = ("x", "images", "x_test", "arr_0")
_LABEL_KEYS = ("y", "labels", "y_test")
_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
# Images read to estimate the dataset's mean pixel: evenly spaced, so the
# estimate is deterministic and cheap on a large folder.
MEAN_SAMPLE = 1024


@dataclass(frozen=True)
class Skipped:
    """A file the dataset could not read, and why."""

    path: str
    reason: str


@dataclass
class Dataset:
    """Images for mining, read lazily; indices are stable for one build."""

    shape: tuple[int, int, int]
    input_range: tuple[float, float]
    sources: list[str]
    labels: list[str | None]
    kind: str
    skipped: list[Skipped] = field(default_factory=list)
    _array: np.ndarray | None = None
    _files: list[Path] | None = None
    resize: str = "resize"

    def __len__(self) -> int:
        return len(self.sources)

    def batches(self, size: int) -> Iterator[np.ndarray]:
        """Float32 batches in the model's input range, in index order."""
        for start in range(0, len(self), size):
            yield self.get(range(start, min(start + size, len(self))))

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """The images at `indices`, float32 in the model's input range."""
        if self._array is not None:
            pixels = np.stack([self._array[i] for i in indices])
        else:
            pixels = np.stack([self._decode(self._files[i]) for i in indices])
        return self._scale(pixels)

    def channel_mean(self) -> np.ndarray:
        """The mean pixel per channel, in the model's input range.

        Ascent optimizes pixels with this mean subtracted, as Yosinski et
        al. (2015) did with the training set's mean.
        """
        count = min(len(self), MEAN_SAMPLE)
        indices = np.linspace(0, len(self) - 1, count).round().astype(int)
        total = np.zeros(self.shape[2], np.float64)
        for start in range(0, count, 256):
            chunk = self.get(indices[start : start + 256].tolist())
            total += chunk.astype(np.float64).sum(axis=(0, 1, 2))
        return (total / (count * self.shape[0] * self.shape[1])).astype(np.float32)

    def fingerprint(self) -> str:
        """A hash of what the dataset holds, for the build cache."""
        digest = hashlib.sha256(repr((self.shape, self.input_range)).encode())
        digest.update("\n".join(self.sources).encode())
        digest.update(repr(self.labels).encode())
        if self._array is not None:
            digest.update(np.ascontiguousarray(self._array).tobytes())
        for file in self._files or ():
            stat = file.stat()
            digest.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
        return digest.hexdigest()[:16]

    def to_uint8(self, images: np.ndarray) -> np.ndarray:
        """Model-range float images back to displayable 0-255 pixels."""
        low, high = self.input_range
        unit = (np.asarray(images, np.float32) - low) / (high - low)
        return np.clip(np.rint(unit * 255), 0, 255).astype(np.uint8)

    def _scale(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.dtype.kind == "f":
            return pixels.astype(np.float32)
        low, high = self.input_range
        return (low + pixels.astype(np.float32) / 255.0 * (high - low)).astype(
            np.float32
        )

    def _decode(self, path: Path) -> np.ndarray:
        return _read_image(path, self.shape, self.resize)


def open_dataset(
    path: Path,
    shape: tuple[int, int, int],
    input_range: tuple[float, float],
    limit: int = 0,
    resize: str = "resize",
) -> Dataset:
    """Open a folder of images or an array file for a model input `shape`."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data.path not found: '{path}'. Fix data.path in the config.")
    if path.is_dir():
        dataset = _open_folder(path, shape, input_range, resize)
    elif path.suffix in (".npz", ".npy"):
        dataset = _open_array(path, shape, input_range)
    else:
        raise DataError(
            f"data.path '{path}' is neither a folder of images nor a .npz/.npy "
            f"file; point it at one of those."
        )
    if limit and len(dataset) > limit:
        _truncate(dataset, limit)
    return dataset


def _open_array(path: Path, shape, input_range) -> Dataset:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read array file '{path}': {exc}") from exc
    if isinstance(loaded, np.ndarray):
        images, labels, names = loaded, None, None
    else:
        images = _first_key(loaded, _IMAGE_KEYS, path, required=True)
        labels = _first_key(loaded, _LABEL_KEYS, path)
        names = loaded["class_names"] if "class_names" in loaded.files else None
    images = _fit_array(images, shape, path)
    count = len(images)
    sources = [f"{path.name}[{i}]" for i in range(count)]
    return Dataset(
        shape=shape,
        input_range=input_range,
        sources=sources,
        labels=_label_names(labels, names, count),
        kind="array",
        _array=images,
    )


def _first_key(loaded, keys, path: Path, required: bool = False):
    for key in keys:
        if key in loaded.files:
            return loaded[key]
    if required:
        raise DataError(
            f"'{path}' holds arrays {loaded.files}; expected the images under "
            f"one of {list(_IMAGE_KEYS)}. Re-save with np.savez(path, x=images)."
        )
    return None


def _fit_array(images: np.ndarray, shape, path: Path) -> np.ndarray:
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.dtype.kind not in "uif":
        raise DataError(
            f"'{path}' images have shape {images.shape} and dtype {images.dtype}; "
            f"expected numbers shaped (N, height, width, channels)."
        )
    if images.shape[1:3] != tuple(shape[:2]):
        raise DataError(
            f"'{path}' images are {images.shape[1]}x{images.shape[2]} but the "
            f"model takes {shape[0]}x{shape[1]}; resize the arrays or use a "
            f"folder of images, which are resized to the model input."
        )
    return _convert_channels(images, shape[2], str(path))


def _convert_channels(images: np.ndarray, channels: int, where: str) -> np.ndarray:
    have = images.shape[-1]
    if have == channels:
        return images
    if have == 3 and channels == 1:
        logger.info("%s: converting RGB images to grayscale for the model", where)
        weights = np.array([0.299, 0.587, 0.114], np.float32)
        gray = (images.astype(np.float32) @ weights)[..., None]
        return (
            gray.astype(images.dtype)
            if images.dtype.kind == "f"
            else np.rint(gray).astype(images.dtype)
        )
    if have == 1 and channels == 3:
        logger.info("%s: repeating grayscale images to RGB for the model", where)
        return np.repeat(images, 3, axis=-1)
    raise DataError(
        f"{where}: images have {have} channels but the model takes {channels}; "
        f"convert the data to {channels} channels."
    )


def _label_names(labels, names, count: int) -> list[str | None]:
    if labels is None:
        return [None] * count
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != count:
        raise DataError(
            f"the array file has {count} images but {len(labels)} labels; "
            f"give one label per image."
        )
    if names is not None and labels.dtype.kind in "iu":
        names = [str(n) for n in names]
        return [names[int(i)] if 0 <= i < len(names) else str(i) for i in labels]
    return [str(v) for v in labels]


def _open_folder(path: Path, shape, input_range, resize: str) -> Dataset:
    if shape[2] not in _PIL_MODES:
        raise DataError(
            f"the model takes {shape[2]}-channel images, which image files "
            f"cannot hold; give the data as a .npy/.npz array instead."
        )
    files = sorted(
        p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    good, skipped = [], []
    for file in files:
        reason = _unreadable(file)
        if reason:
            logger.warning("skipping %s: %s", file, reason)
            skipped.append(Skipped(str(file.relative_to(path)), reason))
        else:
            good.append(file)
    if not good:
        raise DataError(
            f"no readable image in '{path}' ({len(skipped)} skipped); data.path "
            f"needs JPEG, PNG, WebP or BMP files, optionally in class sub-folders."
        )
    labelled = any(f.parent != path for f in good)
    return Dataset(
        shape=shape,
        input_range=input_range,
        sources=[f.relative_to(path).as_posix() for f in good],
        labels=[
            f.parent.relative_to(path).as_posix() if labelled else None for f in good
        ],
        kind="folder",
        skipped=skipped,
        _files=good,
        resize=resize,
    )


def _unreadable(file: Path) -> str | None:
    try:
        with Image.open(file) as image:
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def _read_image(path: Path, shape, resize: str) -> np.ndarray:
    height, width, channels = shape
    with Image.open(path) as image:
        image = image.convert(_PIL_MODES.get(channels, "RGB"))
        if resize == "crop":
            image = _centre_square(image, width / height)
        image = image.resize((width, height), Image.Resampling.BILINEAR)
        pixels = np.asarray(image, dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    return pixels


def _centre_square(image: Image.Image, aspect: float) -> Image.Image:
    w, h = image.size
    if w / h > aspect:
        new_w = round(h * aspect)
        left = (w - new_w) // 2
        return image.crop((left, 0, left + new_w, h))
    new_h = round(w / aspect)
    top = (h - new_h) // 2
    return image.crop((0, top, w, top + new_h))


def _truncate(dataset: Dataset, limit: int) -> None:
    dataset.sources = dataset.sources[:limit]
    dataset.labels = dataset.labels[:limit]
    if dataset._array is not None:
        dataset._array = dataset._array[:limit]
    if dataset._files is not None:
        dataset._files = dataset._files[:limit]
