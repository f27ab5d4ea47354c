"""Datasets: array files and image folders, scaling, labels, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from atlas.data import open_dataset
from atlas.errors import DataError


def _png(path, value, size=(6, 6), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, value, value)
    Image.new(mode, size, colour).save(path)


def test_open_dataset_array_scales_uint8_to_input_range(tmp_path):
    x = np.array([0, 51, 255], np.uint8).reshape(3, 1, 1, 1)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([1, 0, 1]), class_names=["a", "b"])
    data = open_dataset(tmp_path / "d.npz", (1, 1, 1), (-1.0, 1.0))
    np.testing.assert_allclose(data.get([0, 1, 2]).ravel(), [-1.0, -0.6, 1.0])
    assert data.labels == ["b", "a", "b"]
    assert data.sources == ["d.npz[0]", "d.npz[1]", "d.npz[2]"]
    back = data.to_uint8(data.get([0, 1, 2]))
    assert back.ravel().tolist() == [0, 51, 255]


def test_open_dataset_batches_cover_every_image_in_order(tmp_path):
    x = np.arange(7, dtype=np.uint8).reshape(7, 1, 1, 1)
    np.save(tmp_path / "d.npy", x)
    data = open_dataset(tmp_path / "d.npy", (1, 1, 1), (0.0, 255.0))
    batches = list(data.batches(3))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert np.concatenate(batches).ravel().tolist() == list(range(7))
    assert data.labels == [None] * 7


def test_open_dataset_array_of_wrong_size_names_both_shapes(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((2, 8, 8, 1), np.uint8))
    with pytest.raises(DataError, match="8x8 but the model takes 32x32"):
        open_dataset(tmp_path / "d.npy", (32, 32, 1), (0.0, 1.0))


def test_open_dataset_rgb_array_for_gray_model_is_converted(tmp_path):
    x = np.zeros((1, 2, 2, 3), np.uint8)
    x[..., 1] = 100
    np.save(tmp_path / "d.npy", x)
    data = open_dataset(tmp_path / "d.npy", (2, 2, 1), (0.0, 255.0))
    np.testing.assert_allclose(data.get([0]), np.full((1, 2, 2, 1), 59.0))


def test_open_dataset_folder_labels_from_subfolders_and_skips_bad(tmp_path):
    _png(tmp_path / "cat" / "a.png", 10)
    _png(tmp_path / "dog" / "b.png", 200, size=(12, 6))
    (tmp_path / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (tmp_path / "cat" / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("ignored, not an image suffix")
    data = open_dataset(tmp_path, (4, 4, 1), (0.0, 1.0))
    assert data.sources == ["cat/a.png", "dog/b.png"]
    assert data.labels == ["cat", "dog"]
    assert sorted(s.path for s in data.skipped) == ["cat/empty.png", "dog/broken.jpg"]
    images = data.get([0, 1])
    assert images.shape == (2, 4, 4, 1)
    np.testing.assert_allclose(images[0], 10 / 255, atol=1e-6)
    np.testing.assert_allclose(images[1], 200 / 255, atol=1e-6)


def test_open_dataset_folder_of_only_bad_files_names_the_folder(tmp_path):
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="no readable image in"):
        open_dataset(tmp_path, (4, 4, 3), (0.0, 1.0))


def test_open_dataset_limit_keeps_the_first_images(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((10, 1, 1, 1), np.uint8))
    data = open_dataset(tmp_path / "d.npy", (1, 1, 1), (0.0, 1.0), limit=4)
    assert len(data) == 4


def test_open_dataset_missing_path_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="data.path not found"):
        open_dataset(tmp_path / "none.npz", (1, 1, 1), (0.0, 1.0))


def test_fingerprint_changes_with_the_data(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((2, 1, 1, 1), np.uint8))
    np.save(tmp_path / "b.npy", np.ones((2, 1, 1, 1), np.uint8))
    a = open_dataset(tmp_path / "a.npy", (1, 1, 1), (0.0, 1.0))
    b = open_dataset(tmp_path / "b.npy", (1, 1, 1), (0.0, 1.0))
    assert a.fingerprint() != b.fingerprint()
    again = open_dataset(tmp_path / "a.npy", (1, 1, 1), (0.0, 1.0))
    assert a.fingerprint() == again.fingerprint()
