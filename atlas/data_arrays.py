"""Reading images from `.npy`/`.npz` array files a batch at a time.

Arrays are read with positional file reads, never mapped or loaded whole,
so memory does not grow with the size of the file; a compressed member is
first decompressed, streaming, into an uncompressed copy in a cache folder.
"""

from __future__ import annotations

import logging
import struct
import threading
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from atlas.data_unpack import scratch_folder, unpacked_member
from atlas.errors import DataError
from atlas.store import Store

logger = logging.getLogger(__name__)

IMAGE_KEYS = ("x", "images", "x_test", "arr_0")
LABEL_KEYS = ("y", "labels", "y_test")
# A zip member's local header: 30 fixed bytes, then its name and extra field
# (PKWARE APPNOTE 4.3.7); the name and extra lengths sit at bytes 26 and 28.
_LOCAL_HEADER = 30
_LOCAL_SIGNATURE = b"PK\x03\x04"
# The build-cache folder that holds decompressed members.
UNPACKED_KIND = "arrays"
# What reading a damaged or truncated array file raises.
_READ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


class ArrayFile:
    """The image array of a `.npy` or `.npz` file, read by rows.

    A compressed member is decompressed on the first `rows` into `cache`
    (its "arrays" folder), or without one into a temporary folder that
    lives as long as this object; opening it writes nothing.
    """

    def __init__(
        self, path: Path, key: str | None = None, cache: Store | None = None
    ) -> None:
        self.path = path
        self.key = key
        self._cache = cache
        self._packed: zipfile.ZipInfo | None = None
        self._unpacked: Path | None = None
        self._lock = threading.Lock()
        self.shape, self.dtype, self._offset = self._locate()

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, indices: Sequence[int]) -> np.ndarray:
        """The rows at `indices`, in that order, as one array."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), *self.shape[1:]), self.dtype)
        size = self._row_bytes()
        with open(self._readable(), "rb", buffering=0) as file:
            for start, stop, first in _runs(indices):
                view = memoryview(out[start:stop].reshape(-1).view(np.uint8))
                _read_exact(file, self._offset + first * size, view)
        return out

    def head(self, count: int) -> np.ndarray:
        """The first `count` rows; from a compressed member not yet
        decompressed, read from the start of its stream, writing nothing."""
        count = min(count, len(self))
        if self._packed is None or self._unpacked is not None:
            return self.rows(range(count))
        try:
            with zipfile.ZipFile(self.path) as archive:
                with archive.open(self._packed) as member:
                    _npy_header(member, self.path)
                    data = member.read(count * self._row_bytes())
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise DataError(
                f"cannot read '{self.key}' from '{self.path}': {exc}. The "
                f"file is damaged; save the images again (np.savez)."
            ) from exc
        if len(data) < count * self._row_bytes():
            raise DataError(
                f"'{self.path}' ended early: its '{self.key}' array is shorter "
                f"than its header says; re-save the array."
            )
        rows = np.frombuffer(data, self.dtype).reshape(count, *self.shape[1:])
        return rows.copy()

    def _row_bytes(self) -> int:
        return self.dtype.itemsize * int(np.prod(self.shape[1:], dtype=np.int64))

    def _readable(self) -> Path:
        """The file the rows are read from: the array file itself, or the
        decompressed copy of its compressed member."""
        if self._packed is None:
            return self.path
        with self._lock:
            if self._unpacked is None:
                self._unpacked = unpacked_member(
                    self.path, self._packed, self._unpack_folder()
                )
        return self._unpacked

    def _unpack_folder(self) -> Path:
        if self._cache is not None:
            return self._cache.folder(UNPACKED_KIND)
        return scratch_folder(self)

    def _locate(self) -> tuple[tuple[int, ...], np.dtype, int]:
        if self.key is None:
            with open(self.path, "rb") as file:
                return _npy_header(file, self.path)
        with zipfile.ZipFile(self.path) as archive:
            info = archive.getinfo(f"{self.key}.npy")
            if info.compress_type != zipfile.ZIP_STORED:
                # The copy is the member byte for byte, so its header ends
                # where the member's does.
                self._packed = info
                with archive.open(info) as member:
                    return _npy_header(member, self.path)
            start = _member_start(self.path, info)
        with open(self.path, "rb") as file:
            file.seek(start)
            return _npy_header(file, self.path, start)


def open_arrays(
    path: Path, cache: Store | None = None
) -> tuple[ArrayFile, np.ndarray | None, list | None]:
    """The images, labels and class names of an array file; `cache` holds
    the decompressed copy of compressed images (see `ArrayFile`)."""
    try:
        if path.suffix == ".npy":
            return ArrayFile(path), None, None
        with np.load(path, allow_pickle=False) as loaded:
            keys = list(loaded.files)
            labels = _first(loaded, LABEL_KEYS)
            names = loaded["class_names"] if "class_names" in keys else None
    except _READ_ERRORS as exc:
        raise DataError(f"cannot read array file '{path}': {exc}") from exc
    key = next((k for k in IMAGE_KEYS if k in keys), None)
    if key is None:
        raise DataError(
            f"'{path}' holds arrays {keys}; expected the images under one of "
            f"{list(IMAGE_KEYS)}. Re-save with np.savez(path, x=images)."
        )
    names = None if names is None else [str(n) for n in names]
    try:
        return ArrayFile(path, key, cache), labels, names
    except _READ_ERRORS as exc:
        raise DataError(f"cannot read array file '{path}': {exc}") from exc


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
