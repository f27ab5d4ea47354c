"""Reading images from `.npy`/`.npz` array files a batch at a time.

Uncompressed arrays are read with positional file reads, never mapped or
loaded whole, so memory does not grow with the size of the file.
"""

from __future__ import annotations

import logging
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from atlas.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_KEYS = ("x", "images", "x_test", "arr_0")
LABEL_KEYS = ("y", "labels", "y_test")
# A zip member's local header: 30 fixed bytes, then its name and extra field
# (PKWARE APPNOTE 4.3.7); the name and extra lengths sit at bytes 26 and 28.
_LOCAL_HEADER = 30
_LOCAL_SIGNATURE = b"PK\x03\x04"


class ArrayFile:
    """The image array of a `.npy` or `.npz` file, read by rows."""

    def __init__(self, path: Path, key: str | None = None) -> None:
        self.path = path
        self.key = key
        self._memory: np.ndarray | None = None
        self.shape, self.dtype, self._offset = self._locate()

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, indices: Sequence[int]) -> np.ndarray:
        """The rows at `indices`, in that order, as one array."""
        indices = np.asarray(indices, dtype=np.int64)
        if self._memory is not None:
            return self._memory[indices]
        out = np.empty((len(indices), *self.shape[1:]), self.dtype)
        size = self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))
        with open(self.path, "rb", buffering=0) as file:
            for start, stop, first in _runs(indices):
                view = memoryview(out[start:stop].reshape(-1).view(np.uint8))
                _read_exact(file, self._offset + first * size, view)
        return out

    def _locate(self) -> tuple[tuple[int, ...], np.dtype, int]:
        if self.key is None:
            with open(self.path, "rb") as file:
                return _npy_header(file, self.path)
        with zipfile.ZipFile(self.path) as archive:
            info = archive.getinfo(f"{self.key}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                return self._load_whole()
            start = _member_start(self.path, info)
        with open(self.path, "rb") as file:
            file.seek(start)
            return _npy_header(file, self.path, start)

    def _load_whole(self):
        # LIMITATION: a compressed .npz (np.savez_compressed) is held in
        # memory whole; save large datasets with np.savez or np.save.
        logger.info(
            "%s is compressed: holding its '%s' array in memory", self.path, self.key
        )
        with np.load(self.path, allow_pickle=False) as loaded:
            self._memory = loaded[self.key]
        return self._memory.shape, self._memory.dtype, 0


def open_arrays(path: Path) -> tuple[ArrayFile, np.ndarray | None, list | None]:
    """The images, labels and class names of an array file."""
    try:
        if path.suffix == ".npy":
            return ArrayFile(path), None, None
        with np.load(path, allow_pickle=False) as loaded:
            keys = list(loaded.files)
            labels = _first(loaded, LABEL_KEYS)
            names = loaded["class_names"] if "class_names" in keys else None
    except (OSError, ValueError, zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"cannot read array file '{path}': {exc}") from exc
    key = next((k for k in IMAGE_KEYS if k in keys), None)
    if key is None:
        raise DataError(
            f"'{path}' holds arrays {keys}; expected the images under one of "
            f"{list(IMAGE_KEYS)}. Re-save with np.savez(path, x=images)."
        )
    names = None if names is None else [str(n) for n in names]
    return ArrayFile(path, key), labels, names


def _first(loaded, keys: Sequence[str]) -> np.ndarray | None:
    for key in keys:
        if key in loaded.files:
            return loaded[key]
    return None


def _npy_header(file, path: Path, start: int = 0):
    try:
        version = np.lib.format.read_magic(file)
        read = (
            np.lib.format.read_array_header_1_0
            if version == (1, 0)
            else np.lib.format.read_array_header_2_0
        )
        shape, fortran, dtype = read(file)
    except ValueError as exc:
        raise DataError(f"'{path}' is not a NumPy array file: {exc}") from exc
    if fortran and len(shape) > 1:
        raise DataError(
            f"'{path}' stores its images in Fortran order; re-save them with "
            f"np.save(path, np.ascontiguousarray(images))."
        )
    if dtype.hasobject:
        raise DataError(
            f"'{path}' holds Python objects (dtype {dtype}); expected numbers "
            f"shaped (N, height, width, channels)."
        )
    return tuple(shape), dtype, file.tell()


def _member_start(path: Path, info: zipfile.ZipInfo) -> int:
    """Where a stored (uncompressed) zip member's bytes begin in the file."""
    with open(path, "rb") as file:
        file.seek(info.header_offset)
        header = file.read(_LOCAL_HEADER)
    if len(header) < _LOCAL_HEADER or header[:4] != _LOCAL_SIGNATURE:
        raise DataError(f"'{path}' is a damaged .npz file; re-save it with np.savez.")
    name, extra = struct.unpack("<HH", header[26:30])
    return info.header_offset + _LOCAL_HEADER + name + extra


def _runs(indices: np.ndarray):
    """(start, stop, first row) of each run of consecutive indices."""
    if len(indices) == 0:
        return
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    bounds = [0, *breaks.tolist(), len(indices)]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        yield start, stop, int(indices[start])


def _read_exact(file, offset: int, view: memoryview) -> None:
    file.seek(offset)
    done = 0
    while done < len(view):
        got = file.readinto(view[done:])
        if not got:
            raise DataError(
                f"'{file.name}' ended early: it is shorter than its array "
                f"header says; re-save the array."
            )
        done += got
