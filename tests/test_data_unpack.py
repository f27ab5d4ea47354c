"""Compressed `.npz` images: decompressed once, streaming, into the build
cache, reused while the file is unchanged, never left half-written."""

from __future__ import annotations

import os
import shutil
import tracemalloc

import numpy as np
import pytest

from atlas.data_arrays import ArrayFile, open_arrays
from atlas.errors import DataError
from atlas.store import Store

# 128 MiB of 512x512 gray images: zeros compress to almost nothing on disk.
BIG_SHAPE = (512, 512, 512, 1)
MIB = 1024 * 1024


def _store(tmp_path) -> Store:
    return Store(tmp_path / "out" / ".atlas-cache")


def _copies(store: Store) -> list:
    folder = store.root / "arrays"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def test_opening_writes_nothing_and_the_first_read_decompresses(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (9, 4, 3, 2), dtype=np.uint8)
    np.savez_compressed(tmp_path / "d.npz", x=x, y=np.arange(9))
    store = _store(tmp_path)

    array, labels, _ = open_arrays(tmp_path / "d.npz", store)
    assert array.shape == (9, 4, 3, 2) and labels.tolist() == list(range(9))
    np.testing.assert_array_equal(array.head(3), x[:3])
    assert not store.root.exists()

    np.testing.assert_array_equal(array.rows([8, 0, 1, 5]), x[[8, 0, 1, 5]])
    copies = _copies(store)
    assert len(copies) == 1 and copies[0].suffix == ".npy"
    np.testing.assert_array_equal(np.load(copies[0]), x)


def test_the_copy_is_reused_until_the_file_changes(tmp_path):
    path = tmp_path / "d.npz"
    first = np.arange(6 * 4, dtype=np.uint8).reshape(6, 2, 2, 1)
    np.savez_compressed(path, x=first)
    store = _store(tmp_path)
    ArrayFile(path, "x", store).rows([0])
    (copy,) = _copies(store)
    made = copy.stat()

    again = ArrayFile(path, "x", store)
    np.testing.assert_array_equal(again.rows(range(6)), first)
    assert _copies(store) == [copy]
    assert copy.stat().st_ino == made.st_ino
    assert copy.stat().st_mtime_ns == made.st_mtime_ns

    second = first[::-1].copy()
    np.savez_compressed(path, x=second)
    os.utime(path, ns=(made.st_mtime_ns + 10**9, made.st_mtime_ns + 10**9))
    changed = ArrayFile(path, "x", store)
    np.testing.assert_array_equal(changed.rows(range(6)), second)
    (new,) = _copies(store)
    assert new != copy


def test_an_interrupted_decompression_leaves_no_file(tmp_path, monkeypatch):
    x = np.random.default_rng(1).integers(0, 256, (64, 32, 32, 1), dtype=np.uint8)
    np.savez_compressed(tmp_path / "d.npz", x=x)
    store = _store(tmp_path)
    real = shutil.copyfileobj

    def interrupted(source, target, length=0):
        target.write(source.read(1000))
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfileobj", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ArrayFile(tmp_path / "d.npz", "x", store).rows([0])
    assert _copies(store) == []

    monkeypatch.setattr(shutil, "copyfileobj", real)
    array = ArrayFile(tmp_path / "d.npz", "x", store)
    np.testing.assert_array_equal(array.rows([63, 2]), x[[63, 2]])
    assert len(_copies(store)) == 1


def test_a_damaged_member_is_a_data_error_and_leaves_no_file(tmp_path):
    x = np.random.default_rng(2).integers(0, 256, (64, 32, 32, 1), dtype=np.uint8)
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x=x)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    store = _store(tmp_path)
    array = ArrayFile(path, "x", store)
    with pytest.raises(DataError, match="damaged"):
        array.rows([0])
    assert _copies(store) == []


def test_without_a_store_the_copy_lives_in_a_temporary_folder(tmp_path):
    x = np.arange(5 * 2, dtype=np.float32).reshape(5, 2, 1, 1)
    np.savez_compressed(tmp_path / "d.npz", x=x)
    array = ArrayFile(tmp_path / "d.npz", "x")
    np.testing.assert_array_equal(array.rows([4, 1]), x[[4, 1]])
    folder = array._readable().parent
    assert folder.is_dir() and not folder.is_relative_to(tmp_path)
    del array
    assert not folder.exists()


def test_reading_a_large_compressed_array_takes_little_memory(tmp_path):
    x = np.zeros(BIG_SHAPE, np.uint8)
    x[:, 0, 0, 0] = np.arange(BIG_SHAPE[0]) % 251
    np.savez_compressed(tmp_path / "big.npz", x=x, y=np.arange(BIG_SHAPE[0]))
    del x
    tracemalloc.start()
    try:
        array, _, _ = open_arrays(tmp_path / "big.npz", _store(tmp_path))
        corners = []
        for start in range(0, BIG_SHAPE[0], 16):
            rows = array.rows(range(start, start + 16))
            corners.extend(rows[:, 0, 0, 0].tolist())
            assert int(rows.sum(dtype=np.int64)) == sum(rows[:, 0, 0, 0].tolist())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert corners == [i % 251 for i in range(BIG_SHAPE[0])]
    assert peak < 32 * MIB, f"peak {peak / MIB:.1f} MiB for a 128 MiB array"


def test_a_partial_copy_a_killed_build_left_is_removed(tmp_path):
    x = np.arange(8, dtype=np.uint8).reshape(2, 2, 2, 1)
    np.savez_compressed(tmp_path / "d.npz", x=x)
    store = _store(tmp_path)
    folder = store.root / "arrays"
    folder.mkdir(parents=True)
    (folder / ".unpack-abc123.tmp").write_bytes(b"half a copy")
    np.testing.assert_array_equal(
        ArrayFile(tmp_path / "d.npz", "x", store).rows([1]), x[1:]
    )
    assert [p.suffix for p in _copies(store)] == [".npy"]
