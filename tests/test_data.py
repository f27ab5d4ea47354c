"""Datasets: array files and image folders, scaling, fitting, channels,
labels, streaming reads, and bad files skipped and named (C05, C21)."""

from __future__ import annotations

import io
import logging
import struct
import zlib

import keras
import numpy as np
import pytest
from PIL import Image

from atlas.data import open_dataset
from atlas.data_arrays import ArrayFile
from atlas.errors import DataError
from atlas.mine import mine
from atlas.model import describe_layers, feature_model, select_layers


def _png(path, value, size=(6, 6), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, value // 2, 255 - value)
    Image.new(mode, size, colour).save(path)


def _truncated_jpeg(path):
    buffer = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def test_open_dataset_array_scales_uint8_to_input_range(tmp_path):
    x = np.array([0, 51, 255], np.uint8).reshape(3, 1, 1, 1)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([1, 0, 1]), class_names=["a", "b"])
    data = open_dataset(tmp_path / "d.npz", (1, 1, 1), (-1.0, 1.0))
    np.testing.assert_allclose(data.get([0, 1, 2]).ravel(), [-1.0, -0.6, 1.0])
    assert data.labels == ["b", "a", "b"]
    assert data.class_names == ["a", "b"]
    assert data.sources == ["d.npz[0]", "d.npz[1]", "d.npz[2]"]
    back = data.to_uint8(data.get([0, 1, 2]))
    assert back.ravel().tolist() == [0, 51, 255]


@pytest.mark.parametrize("save", ["npy", "npz", "npz_compressed"])
def test_array_file_rows_equal_the_array(tmp_path, save):
    x = np.random.default_rng(2).integers(0, 256, (9, 3, 2, 1), dtype=np.uint8)
    path = tmp_path / f"d.{save[:3]}"
    if save == "npy":
        np.save(path, x)
    elif save == "npz":
        np.savez(path, labels=np.arange(9), x=x)
    else:
        np.savez_compressed(path, x=x)
    array = ArrayFile(path, None if save == "npy" else "x")
    assert len(array) == 9
    picks = [7, 0, 1, 2, 8, 8, 4]
    np.testing.assert_array_equal(array.rows(picks), x[picks])


def test_pipeline_gives_the_batches_of_get_in_order(tmp_path):
    x = np.arange(7 * 4, dtype=np.uint8).reshape(7, 2, 2, 1)
    np.save(tmp_path / "d.npy", x)
    data = open_dataset(tmp_path / "d.npy", (2, 2, 1), (-0.5, 3.0))
    batches = [b.numpy() for b in data.pipeline(3)]
    assert [len(b) for b in batches] == [3, 3, 1]
    np.testing.assert_array_equal(np.concatenate(batches), data.get(range(7)))
    assert data.to_uint8(np.concatenate(batches)).ravel().tolist() == list(range(28))
    assert data.labels == [None] * 7


def test_open_dataset_array_of_another_size_is_fitted(tmp_path):
    x = np.zeros((2, 8, 12, 1), np.uint8)
    x[0] = 80
    x[1, :, 2:10] = 200  # the centre square: "crop" keeps only it
    np.save(tmp_path / "d.npy", x)
    stretched = open_dataset(tmp_path / "d.npy", (4, 4, 1), (0.0, 255.0))
    assert stretched.get([0]).shape == (1, 4, 4, 1)
    np.testing.assert_allclose(stretched.get([0]), 80.0)
    assert stretched.get([1]).min() < 100.0  # the black sides are blended in
    cropped = open_dataset(tmp_path / "d.npy", (4, 4, 1), (0.0, 255.0), resize="crop")
    np.testing.assert_allclose(cropped.get([1]), 200.0)


def test_open_dataset_rgb_array_for_gray_model_is_converted_and_logged(
    tmp_path, caplog
):
    x = np.zeros((1, 2, 2, 3), np.uint8)
    x[..., 1] = 100
    np.save(tmp_path / "d.npy", x)
    with caplog.at_level(logging.INFO, logger="atlas"):
        data = open_dataset(tmp_path / "d.npy", (2, 2, 1), (0.0, 255.0))
    assert "converting RGB images to grayscale" in caplog.text
    np.testing.assert_allclose(data.get([0]), np.full((1, 2, 2, 1), 59.0))


def test_open_dataset_other_channel_counts_are_refused_naming_both(tmp_path):
    np.save(tmp_path / "d.npy", np.zeros((2, 4, 4, 4), np.uint8))
    with pytest.raises(DataError, match="have 4 channels but the model takes 3"):
        open_dataset(tmp_path / "d.npy", (4, 4, 3), (0.0, 1.0))


def test_open_dataset_integer_images_must_be_8_bit(tmp_path):
    np.save(tmp_path / "ok.npy", np.full((1, 2, 2, 1), 255, np.int64))
    ok = open_dataset(tmp_path / "ok.npy", (2, 2, 1), (0.0, 1.0))
    np.testing.assert_allclose(ok.get([0]), 1.0)
    np.save(tmp_path / "wide.npy", np.full((1, 2, 2, 1), 4095, np.int32))
    wide = open_dataset(tmp_path / "wide.npy", (2, 2, 1), (0.0, 1.0))
    with pytest.raises(DataError, match="from 4095 to 4095.*uint16"):
        wide.get([0])


SIXTEEN_BIT = (0, 200, 1000, 20000, 40000, 65535)


def _eight_bit(values):
    """16-bit values as the model sees them in [0, 1]: round(v / 257) / 255."""
    return np.array([round(v / 257) for v in values]) / 255


def _opener_in_mode(mode):
    """Image.open, giving a 16-bit file's pixels in another Pillow mode
    ("I" in older Pillow, "I;16B"), which this Pillow cannot write."""
    real_open = Image.open

    def opener(path, *args, **kwargs):
        with real_open(path, *args, **kwargs) as image:
            pixels = np.asarray(image)
        if mode == "I":
            return Image.fromarray(pixels.astype(np.int32))
        size = pixels.shape[::-1]
        return Image.frombytes(mode, size, pixels.astype(">u2").tobytes())

    return opener


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_open_dataset_16_bit_pngs_scale_by_the_full_range(
    tmp_path, caplog, monkeypatch, mode
):
    """C05: 16-bit grayscale PNGs are not clipped at 255 but reduced to 8
    bits by value / 257, and the log says so once."""
    for i, value in enumerate(SIXTEEN_BIT):
        Image.fromarray(np.full((4, 4), value, np.uint16)).save(tmp_path / f"v{i}.png")
    if mode != "I;16":
        monkeypatch.setattr("atlas.data_folder.Image.open", _opener_in_mode(mode))
        with Image.open(tmp_path / "v1.png") as image:
            assert image.mode == mode
    with caplog.at_level(logging.INFO, logger="atlas"):
        data = open_dataset(tmp_path, (4, 4, 1), (0.0, 1.0))
    values = data.get(range(len(SIXTEEN_BIT)))[:, 0, 0, 0]
    np.testing.assert_allclose(values, _eight_bit(SIXTEEN_BIT), atol=1e-6)
    assert caplog.text.count("16-bit") == 1
    assert f"reducing {len(SIXTEEN_BIT)} 16-bit image(s) to 8 bits" in caplog.text
    rgb = open_dataset(tmp_path, (4, 4, 3), (0.0, 1.0)).get([4])
    np.testing.assert_allclose(rgb, round(40000 / 257) / 255, atol=1e-6)


def _png_rgb16(path, value):
    """A 16-bit-per-sample RGB PNG, written by hand (Pillow cannot)."""
    raw = b"".join(b"\x00" + np.full(6, value, ">u2").tobytes() for _ in range(2))

    def chunk(kind, data):
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 2, 2, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_open_dataset_16_bit_rgb_png_keeps_its_range(tmp_path):
    """C05: Pillow reads a 16-bit RGB PNG as 8-bit RGB (the top byte): the
    values stay within one level of value / 257, never clipped."""
    for i, value in enumerate(SIXTEEN_BIT):
        _png_rgb16(tmp_path / f"v{i}.png", value)
    data = open_dataset(tmp_path, (2, 2, 3), (0.0, 1.0))
    values = data.get(range(len(SIXTEEN_BIT)))[:, 0, 0, 0]
    np.testing.assert_allclose(values, _eight_bit(SIXTEEN_BIT), atol=1.01 / 255)


def test_open_dataset_uint16_array_is_16_bit_like_png_files(tmp_path, caplog):
    """C05: a uint16 array follows the rule of 16-bit files: value / 257."""
    x = np.array(SIXTEEN_BIT, np.uint16).reshape(-1, 1, 1, 1)
    np.save(tmp_path / "deep.npy", x)
    with caplog.at_level(logging.INFO, logger="atlas"):
        data = open_dataset(tmp_path / "deep.npy", (2, 2, 1), (0.0, 1.0))
    values = data.get(range(len(x)))[:, 1, 1, 0]
    np.testing.assert_allclose(values, _eight_bit(SIXTEEN_BIT), atol=1e-6)
    assert caplog.text.count("16-bit") == 1
    batches = [b.numpy() for b in data.pipeline(4)]
    np.testing.assert_array_equal(np.concatenate(batches), data.get(range(len(x))))
    assert "nearly black" not in caplog.text


def test_open_dataset_uint16_array_of_8_bit_values_is_warned(tmp_path, caplog):
    np.save(tmp_path / "shallow.npy", np.full((3, 2, 2, 1), 200, np.uint16))
    with caplog.at_level(logging.WARNING, logger="atlas"):
        open_dataset(tmp_path / "shallow.npy", (2, 2, 1), (0.0, 1.0))
    assert "at most 200" in caplog.text and "astype(np.uint8)" in caplog.text


def test_open_dataset_folder_labels_classes_and_bad_files_by_name(tmp_path, caplog):
    _png(tmp_path / "dog" / "b.png", 200, size=(12, 6))
    _png(tmp_path / "cat" / "a.png", 10)
    _png(tmp_path / "cat" / "deep" / "c.bmp", 30)
    _truncated_jpeg(tmp_path / "dog" / "cut.jpg")
    (tmp_path / "cat" / "empty.png").write_bytes(b"")
    (tmp_path / "bird").mkdir()
    (tmp_path / "bird" / "notes.webp").write_text("not an image at all")
    (tmp_path / "readme.txt").write_text("ignored, not an image suffix")
    with caplog.at_level(logging.INFO, logger="atlas"):
        data = open_dataset(tmp_path, (4, 4, 1), (0.0, 1.0))
    assert "converting 3 colour image(s) to grayscale" in caplog.text
    assert data.sources == ["cat/a.png", "cat/deep/c.bmp", "dog/b.png"]
    assert data.labels == ["cat", "cat", "dog"]
    assert data.class_names == ["bird", "cat", "dog"]
    skipped = {s.path: s.reason for s in data.skipped}
    assert sorted(skipped) == ["bird/notes.webp", "cat/empty.png", "dog/cut.jpg"]
    assert "truncated" in skipped["dog/cut.jpg"]
    assert all(reason for reason in skipped.values())
    images = data.get([0, 2])
    assert images.shape == (2, 4, 4, 1)
    gray = np.asarray(Image.new("RGB", (1, 1), (10, 5, 245)).convert("L"))
    np.testing.assert_allclose(images[0], gray.item() / 255, atol=1e-6)


def test_mining_a_folder_with_bad_files_equals_brute_force_on_the_good(tmp_path):
    # C21: every file is checked before batching; a bad one costs only itself.
    rng = np.random.default_rng(4)
    good = rng.integers(0, 256, (11, 5, 5, 3), dtype=np.uint8)
    for i, pixels in enumerate(good):
        Image.fromarray(pixels).save(tmp_path / f"img{i:02d}.png")
        if i % 3 == 1:
            _truncated_jpeg(tmp_path / f"img{i:02d}b.jpg")
    data = open_dataset(tmp_path, (5, 5, 3), (0.0, 1.0))
    assert len(data) == 11 and len(data.skipped) == 4
    inputs = keras.Input((5, 5, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3, name="c")(inputs))
    infos = select_layers(describe_layers(model), ["c"])
    mined = mine(feature_model(model, infos), infos, data.pipeline(4), k=5)["c"]
    maps = model.predict(good.astype(np.float32) / 255, verbose=0)
    best = maps.reshape(11, -1, 2).max(axis=1)
    for unit in range(2):
        order = np.lexsort((np.arange(11), -best[:, unit]))[:5]
        assert mined.images[unit].tolist() == order.tolist()


def test_open_dataset_folder_of_only_bad_files_names_the_folder(tmp_path):
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(DataError, match=f"no readable image in '{tmp_path}'"):
        open_dataset(tmp_path, (4, 4, 3), (0.0, 1.0))


def test_open_dataset_limit_spreads_over_the_data(tmp_path):
    """data.limit samples evenly, so every class folder contributes; an
    unreadable pick is replaced by a file not yet picked."""
    x = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10) % 3)
    data = open_dataset(tmp_path / "d.npz", (1, 1, 1), (0.0, 1.0), limit=4)
    assert data.sources == ["d.npz[0]", "d.npz[3]", "d.npz[6]", "d.npz[9]"]
    assert data.labels == ["0", "0", "0", "0"]
    assert data.get(range(4)).ravel().tolist() == pytest.approx(
        [0, 3 / 255, 6 / 255, 9 / 255]
    )
    assert np.concatenate(list(data.pipeline(3))).ravel().tolist() == pytest.approx(
        [0, 3 / 255, 6 / 255, 9 / 255]
    )
    folder = tmp_path / "f"
    for name in ("cat", "dog", "fox"):
        for i in range(4):
            _png(folder / name / f"{i}.png", 9 * i)
    limited = open_dataset(folder, (2, 2, 3), (0.0, 1.0), limit=3)
    assert limited.sources == ["cat/0.png", "dog/2.png", "fox/3.png"]
    (folder / "fox" / "3.png").write_bytes(b"")  # picked, unreadable
    limited = open_dataset(folder, (2, 2, 3), (0.0, 1.0), limit=3)
    assert len(limited) == 3 and [s.path for s in limited.skipped] == ["fox/3.png"]
    assert "fox/3.png" not in limited.sources


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


def test_build_names_every_skipped_file_in_summary_and_manifest(
    tmp_path, monkeypatch, capsys
):
    import json

    from atlas.cli import main

    inputs = keras.Input((6, 6, 3))
    outputs = keras.layers.Conv2D(2, 3, activation="relu", name="c")(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "m.keras")
    for i in range(3):
        _png(tmp_path / "data" / "a" / f"{i}.png", 60 * i)
    _truncated_jpeg(tmp_path / "data" / "a" / "cut.jpg")
    (tmp_path / "data" / "b").mkdir()
    (tmp_path / "data" / "b" / "zero.bmp").write_bytes(b"")
    (tmp_path / "site_config.toml").write_text(
        '[model]\npath = "m.keras"\n[data]\npath = "data"\n'
        '[layers]\nnames = ["c"]\n[visualize]\npreset = "none"\n'
        'progression = ["none"]\n[mine]\ntop_k = 2\nheatmaps = []\n'
    )
    monkeypatch.setenv("ATLAS_MAX_STEPS", "2")
    assert main(["build", "--config", str(tmp_path / "site_config.toml")]) == 0
    printed = capsys.readouterr().out
    assert "skipped 2 unreadable file(s)" in printed
    assert "a/cut.jpg: OSError: image file is truncated" in printed
    assert "b/zero.bmp: UnidentifiedImageError" in printed
    manifest = json.loads((tmp_path / "output" / "manifest.json").read_text())
    skipped = manifest["summary"]["skipped"]
    assert [entry["path"] for entry in skipped] == ["a/cut.jpg", "b/zero.bmp"]
    assert all(entry["reason"] for entry in skipped)


def test_open_dataset_folder_leaves_out_atlas_outputs_and_hidden_folders(tmp_path):
    """An output folder inside data.path (and a checkpoint folder) holds
    images that are not data: they are neither mined nor a class."""
    _png(tmp_path / "cat" / "a.png", 10)
    _png(tmp_path / "dog" / "b.png", 200)
    _png(tmp_path / "site" / "units" / "sheet.png", 90)
    (tmp_path / "site" / ".neuron-atlas").write_text("written by atlas build")
    _png(tmp_path / ".ipynb_checkpoints" / "a-checkpoint.png", 10)
    data = open_dataset(tmp_path, (4, 4, 3), (0.0, 1.0))
    assert data.sources == ["cat/a.png", "dog/b.png"]
    assert data.class_names == ["cat", "dog"]


def test_open_dataset_folder_for_a_4_channel_model_needs_an_alpha_channel(tmp_path):
    """C05, as the array path does: RGB files for a 4-channel model are
    refused naming both channel counts, not padded with an opaque alpha."""
    _png(tmp_path / "rgba" / "a.png", 10, mode="RGBA")
    with_alpha = open_dataset(tmp_path / "rgba", (4, 4, 4), (0.0, 1.0))
    assert with_alpha.get([0]).shape == (1, 4, 4, 4)
    _png(tmp_path / "mixed" / "a.png", 10, mode="RGBA")
    _png(tmp_path / "mixed" / "b.png", 20)
    with pytest.raises(DataError) as error:
        open_dataset(tmp_path / "mixed", (4, 4, 4), (0.0, 1.0))
    message = str(error.value)
    assert "'b.png'" in message and "takes 4" in message and "RGBA" in message
