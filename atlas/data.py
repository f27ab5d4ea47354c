"""Datasets for mining: an image folder (class sub-folders give labels) or a
`.npy`/`.npz` array, decoded, fitted and scaled to the model's input, and
streamed in batches through a tf.data pipeline."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from atlas.data_arrays import ArrayFile, open_arrays
from atlas.data_folder import (
    PIL_MODES,
    Skipped,
    evenly_spaced,
    fit_array,
    read_image,
    scan_folder,
)
from atlas.errors import DataError
from atlas.pixel_rules import (
    as_pixels,
    check_array,
    convert_channels,
    log_deep,
    plan_channels,
    warn_float_range,
    warn_shallow,
)
from atlas.store import Store

logger = logging.getLogger(__name__)

# Images read to estimate the dataset's mean pixel: evenly spaced, so the
# estimate is deterministic and cheap on a large folder.
MEAN_SAMPLE = 1024
# Batches decoded at once, and batches kept ready ahead of the model. Fixed
# rather than autotuned, so that memory stays the same however long the run.
PARALLEL_BATCHES = 2
PREFETCH_BATCHES = 2

__all__ = ["Dataset", "Skipped", "open_dataset", "scale_pixels"]


@dataclass
class Dataset:
    """Images for mining, read lazily; indices are stable for one build."""

    shape: tuple[int, int, int]
    input_range: tuple[float, float]
    sources: list[str]
    labels: list[str | None]
    kind: str
    skipped: list[Skipped] = field(default_factory=list)
    class_names: list[str] | None = None
    resize: str = "resize"
    _array: ArrayFile | None = None
    _rows: list[int] | None = None  # the array's rows, under data.limit
    _files: list[Path] | None = None
    _digest: str | None = None

    def __len__(self) -> int:
        return len(self.sources)

    def pipeline(self, size: int, scaled: bool = True) -> tf.data.Dataset:
        """The images in index order, in batches of `size`, decoded in
        parallel and prefetched.

        Files are read and decoded in Python (the decoder that checked
        them), several batches at once. With `scaled` False, 8-bit images
        stay uint8 for the consumer to scale with `scale_pixels` (a quarter
        of the bytes to move); either way the pixels equal `get`'s.
        """
        count = len(self)
        dtype = tf.uint8 if self._raw_dtype() == np.uint8 else tf.float32

        def load(start: tf.Tensor) -> np.ndarray:
            first = int(start)
            return self._raw(range(first, min(first + size, count)))

        def batch(start: tf.Tensor) -> tf.Tensor:
            pixels = tf.py_function(load, [start], dtype)
            pixels.set_shape((None, *self.shape))
            return scale_pixels(pixels, self.input_range) if scaled else pixels

        starts = tf.data.Dataset.range(0, count, size)
        batches = starts.map(
            batch, num_parallel_calls=PARALLEL_BATCHES, deterministic=True
        )
        return batches.prefetch(PREFETCH_BATCHES).with_options(_fixed_options())

    def get(self, indices: Sequence[int]) -> np.ndarray:
        """The images at `indices`, float32 in the model's input range."""
        return self._scale(self._raw(indices))

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
        """A hash of what the dataset holds, for the build cache.

        Files enter by size and modification time, not content, so that
        this stays cheap on a dataset of any size.
        """
        if self._digest is None:
            digest = hashlib.sha256(repr((self.shape, self.input_range)).encode())
            digest.update(repr((self.kind, self.resize, len(self))).encode())
            digest.update("\n".join(self.sources).encode())
            digest.update(repr(self.labels).encode())
            for file in self._stat_files():
                stat = file.stat()
                digest.update(f"{file}:{stat.st_size}:{stat.st_mtime_ns}".encode())
            self._digest = digest.hexdigest()[:16]
        return self._digest

    def to_uint8(self, images: np.ndarray) -> np.ndarray:
        """Model-range float images back to displayable 0-255 pixels."""
        low, high = self.input_range
        unit = (np.asarray(images, np.float32) - low) / (high - low)
        return np.clip(np.rint(unit * 255), 0, 255).astype(np.uint8)

    def _stat_files(self) -> list[Path]:
        if self._array is not None:
            return [self._array.path]
        return list(self._files or [])

    def _raw(self, indices: Sequence[int]) -> np.ndarray:
        """Pixels fitted to the model input: uint8, or float as stored."""
        if self._array is not None:
            return self._array_rows(indices)
        files = self._files or []
        pixels = [read_image(files[i], self.shape, self.resize) for i in indices]
        return np.stack(pixels) if pixels else np.zeros((0, *self.shape), np.uint8)

    def _raw_dtype(self) -> np.dtype:
        if self._array is not None and self._array.dtype.kind == "f":
            return np.dtype(np.float32)
        return np.dtype(np.uint8)

    def _array_rows(self, indices: Sequence[int]) -> np.ndarray:
        array = self._array
        if self._rows is not None:
            indices = [self._rows[i] for i in indices]
        rows = as_pixels(array.rows(indices), array.path)
        rows = convert_channels(rows, self.shape[2])
        if rows.shape[1:3] != self.shape[:2]:
            fitted = [fit_array(r, self.shape, self.resize) for r in rows]
            rows = np.stack(fitted) if fitted else np.zeros((0, *self.shape))
        return rows.astype(self._raw_dtype(), copy=False)

    def _scale(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels to the input range; float images are used as they are."""
        if pixels.dtype.kind == "f":
            return pixels.astype(np.float32)
        low, high = (np.float32(v) for v in self.input_range)
        return pixels.astype(np.float32) / np.float32(255) * (high - low) + low


def scale_pixels(pixels: tf.Tensor, input_range: tuple[float, float]) -> tf.Tensor:
    """uint8 pixels to float32 in `input_range`, in TensorFlow: the float32
    operations of `Dataset.get`, in the same order, so the values are equal;
    float pixels pass as they are."""
    if pixels.dtype != tf.uint8:
        return tf.cast(pixels, tf.float32)
    low, high = (np.float32(v) for v in input_range)
    return tf.cast(pixels, tf.float32) / np.float32(255) * (high - low) + low


def open_dataset(
    path: Path,
    shape: tuple[int, int, int],
    input_range: tuple[float, float],
    limit: int = 0,
    resize: str = "resize",
    cache: Store | None = None,
) -> Dataset:
    """Open a folder of images or an array file for a model input `shape`.

    `cache` is the build's store, which keeps the decompressed copy of a
    compressed `.npz`; opening writes nothing there, the first read does.
    """
    path = Path(path)
    shape = tuple(int(d) for d in shape)
    if not path.exists():
        raise DataError(f"data.path not found: '{path}'. Fix data.path in the config.")
    if path.is_dir():
        return _open_folder(path, shape, input_range, resize, limit)
    if path.suffix in (".npz", ".npy"):
        return _open_array(path, shape, input_range, resize, limit, cache)
    raise DataError(
        f"data.path '{path}' is neither a folder of images nor a .npz/.npy "
        f"file; point it at one of those."
    )


def _open_array(
    path: Path, shape, input_range, resize: str, limit: int, cache: Store | None
) -> Dataset:
    array, labels, names = open_arrays(path, cache)
    check_array(array, shape)
    rows = evenly_spaced(len(array), limit)
    if len(rows) < len(array):
        logger.info(
            "data.limit = %d: mining %d of the %d images, evenly spaced",
            limit,
            len(rows),
            len(array),
        )
    plan_channels(array.shape[-1], shape[2], str(path))
    warn_float_range(array, input_range)
    if array.dtype == np.uint16:
        log_deep(path, len(array))
        warn_shallow(array)
    if array.shape[1:3] != tuple(shape[:2]):
        logger.info(
            "%s: resizing %dx%d images to the model's %dx%d (data.resize = %r)",
            path,
            *array.shape[1:3],
            *shape[:2],
            resize,
        )
    return Dataset(
        shape=shape,
        input_range=input_range,
        sources=[f"{path.name}[{i}]" for i in rows],
        labels=_pick(_label_names(labels, names, len(array)), rows),
        kind="array",
        class_names=names,
        resize=resize,
        _array=array,
        _rows=None if len(rows) == len(array) else rows,
    )


def _pick(values: list, rows: list[int]) -> list:
    return [values[row] for row in rows]


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
        return [names[int(i)] if 0 <= i < len(names) else str(i) for i in labels]
    return [str(v) for v in labels]


def _open_folder(path: Path, shape, input_range, resize: str, limit: int) -> Dataset:
    if shape[2] not in PIL_MODES:
        raise DataError(
            f"the model takes {shape[2]}-channel images, which image files "
            f"cannot hold; give the data as a .npy/.npz array instead."
        )
    folder = scan_folder(path, limit)
    if not folder.files:
        raise DataError(
            f"no readable image in '{path}' ({len(folder.skipped)} skipped); "
            f"data.path needs JPEG, PNG, WebP or BMP files, optionally in class "
            f"sub-folders."
        )
    if folder.deep:
        log_deep(path, folder.deep)
    if shape[2] == 4 and not all(folder.alpha):
        without = [
            s for s, a in zip(folder.sources, folder.alpha, strict=True) if not a
        ]
        raise DataError(
            f"{path}: {len(without)} image(s) have 3 channels or fewer (e.g. "
            f"'{without[0]}') but the model takes 4; give images with an "
            f"alpha channel (RGBA PNG), or the data as a 4-channel .npy array."
        )
    if shape[2] == 1 and folder.colour:
        logger.info(
            "%s: converting %d colour image(s) to grayscale for the model",
            path,
            folder.colour,
        )
    count = min(len(folder.files), limit) if limit else len(folder.files)
    return Dataset(
        shape=shape,
        input_range=input_range,
        sources=folder.sources[:count],
        labels=folder.labels[:count],
        kind="folder",
        skipped=folder.skipped,
        class_names=folder.class_names,
        resize=resize,
        _files=folder.files[:count],
    )


def _fixed_options() -> tf.data.Options:
    """Parallelism and prefetch are fixed, so tf.data's autotuner has nothing
    to tune; left on, its background optimization stalled the end of the
    data by up to 8 s in bench/mining.py."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return options
