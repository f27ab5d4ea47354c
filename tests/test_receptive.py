"""Receptive fields from the Keras graph, checked by hand and against the
gradient support of single units; crops that pass the image border."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from atlas.receptive import crop, receptive_field
from atlas.records import Box


def _conv(x, size, name, **options):
    options = {"padding": "same", "use_bias": False, **options}
    return keras.layers.Conv2D(1, size, name=name, **options)(x)


def _chain(count: int, hw: int = 8) -> keras.Model:
    inputs = keras.Input((hw, hw, 1))
    x = inputs
    for i in range(count):
        x = _conv(x, 3, f"c{i}")
    return keras.Model(inputs, x)


def _rows(model, name, hw, row):
    box = receptive_field(model, name, (hw, hw)).box(row, row)
    return box.top, box.bottom - 1


def test_same_stride_two_pads_by_the_input_size():
    # C19: TensorFlow's SAME pads the odd pixel after, so the unit moves.
    for hw, rows in ((32, (2, 4)), (33, (1, 3))):
        inputs = keras.Input((hw, hw, 1))
        model = keras.Model(inputs, _conv(inputs, 3, "s", strides=2))
        assert _rows(model, "s", hw, 1) == rows


def test_even_kernel_pads_one_before_two_after():
    inputs = keras.Input((10, 10, 1))
    model = keras.Model(inputs, _conv(inputs, 4, "k4"))
    assert _rows(model, "k4", 10, 0) == (-1, 2)


def test_dilation_makes_two_3x3_convs_see_nine():
    inputs = keras.Input((20, 20, 1))
    x = _conv(inputs, 3, "d1", dilation_rate=2)
    model = keras.Model(inputs, _conv(x, 3, "d2", dilation_rate=2))
    top, bottom = _rows(model, "d2", 20, 10)
    assert (top, bottom) == (6, 14)


def _branching() -> keras.Model:
    """Strided, dilated, padded, pooled and branching, then merged."""
    inputs = keras.Input((None, None, 1))
    x = keras.layers.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(inputs)
    x = _conv(x, 3, "a", strides=2, padding="valid")
    left = _conv(x, 3, "b", dilation_rate=2)
    right = keras.layers.AveragePooling2D(2, strides=1, padding="same", name="p")(x)
    right = _conv(right, 1, "r")
    merged = keras.layers.Add(name="add")([left, right])
    out = _conv(merged, 4, "top", strides=2)
    return keras.Model(inputs, out)


def _clipped(box: Box, hw: int) -> tuple[int, int, int, int]:
    """The part of a box on an hw x hw image: (top, bottom, left, right)."""
    return (max(box.top, 0), min(box.bottom, hw), max(box.left, 0), min(box.right, hw))


def _gradient_support(model, name, hw, row, col):
    """Rows and columns of input pixels that move the unit at (row, col),
    on a clone with ones kernels and linear units (C19's test check)."""
    for layer in model.layers:
        for weight in layer.weights:
            weight.assign(np.ones(weight.shape, np.float32))
    extractor = keras.Model(model.inputs, model.get_layer(name).output)
    image = tf.ones((1, hw, hw, 1))
    with tf.GradientTape() as tape:
        tape.watch(image)
        value = extractor(image)[0, row, col, 0]
    grad = np.abs(tape.gradient(value, image).numpy()[0, :, :, 0]) > 0
    rows, cols = np.nonzero(grad.any(axis=1))[0], np.nonzero(grad.any(axis=0))[0]
    return (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1)


@pytest.mark.parametrize("hw", [17, 20])
def test_field_equals_gradient_support_on_a_branching_model(hw):
    model = _branching()
    field = receptive_field(model, "top", (hw, hw))
    rows, cols = field.output_hw
    for row in range(rows):
        for col in range(cols):
            clipped = _clipped(field.box(row, col), hw)
            assert clipped == _gradient_support(model, "top", hw, row, col)


def test_crop_past_the_border_keeps_its_place_in_the_field():
    # C20: three 3x3 SAME convs (field 7) on an 8x8 image r * 8 + c + 1.
    image = (np.arange(64, dtype=np.float32) + 1).reshape(8, 8, 1)
    field = receptive_field(_chain(3), "c2", (8, 8))
    corner = crop(image, field.box(0, 0), pad_value=0.0)[..., 0]
    assert field.box(0, 0) == Box(-3, -3, 4, 4)
    assert corner.shape == (7, 7)
    np.testing.assert_array_equal(corner[3:, 3:], image[:4, :4, 0])
    assert (corner[:3] == 0).all() and (corner[:, :3] == 0).all()
    inner = crop(image, field.box(4, 4), pad_value=0.0)[..., 0]
    np.testing.assert_array_equal(inner, image[1:8, 1:8, 0])


def test_field_wider_than_the_image_pads_both_sides():
    image = (np.arange(64, dtype=np.float32) + 1).reshape(8, 8, 1)
    field = receptive_field(_chain(6), "c5", (8, 8))
    for y, x in ((0, 0), (3, 5), (7, 7)):
        box = field.box(y, x)
        assert (box.height, box.width) == (13, 13)
        pixels = crop(image, box, pad_value=-1.0)[..., 0]
        # Image pixel (r, c) sits at (r + 6 - y, c + 6 - x) of the crop.
        canvas = np.full((13 + 16, 13 + 16), -1.0, np.float32)
        canvas[6 - y + 8 : 14 - y + 8, 6 - x + 8 : 14 - x + 8] = image[..., 0]
        np.testing.assert_array_equal(pixels, canvas[8:21, 8:21])
    both_sides = field.box(3, 3)
    assert both_sides.top < 0 and both_sides.bottom > 8


def _transposed(**options) -> keras.Model:
    inputs = keras.Input((None, None, 1))
    x = _conv(inputs, 3, "down", strides=2)
    up = keras.layers.Conv2DTranspose(1, name="up", use_bias=False, **options)(x)
    return keras.Model(inputs, _conv(up, 3, "top"))


@pytest.mark.parametrize(
    "options",
    [
        {"kernel_size": 3, "strides": 2, "padding": "same"},
        {"kernel_size": 4, "strides": 2, "padding": "valid"},
        {"kernel_size": 3, "strides": 1, "padding": "same", "dilation_rate": 2},
    ],
)
def test_field_equals_gradient_support_through_a_transposed_conv(options):
    hw = 11
    model = _transposed(**options)
    field = receptive_field(model, "top", (hw, hw))
    rows, cols = field.output_hw
    for row in range(rows):
        for col in (0, cols // 2, cols - 1):
            clipped = _clipped(field.box(row, col), hw)
            assert clipped == _gradient_support(model, "top", hw, row, col)


def test_channels_first_field_equals_channels_last():
    # C04: geometry is read on the spatial axes of the data format; CPU
    # cannot run NCHW convs, so the two models are compared, not run.
    def model(fmt: str) -> keras.Model:
        shape = (1, 20, 20) if fmt == "channels_first" else (20, 20, 1)
        inputs = keras.Input(shape)
        x = _conv(inputs, 3, "a", strides=2, data_format=fmt)
        x = keras.layers.MaxPooling2D(2, data_format=fmt, name="p")(x)
        return keras.Model(inputs, _conv(x, 3, "b", dilation_rate=2, data_format=fmt))

    first = receptive_field(model("channels_first"), "b", (20, 20))
    last = receptive_field(model("channels_last"), "b", (20, 20))
    assert first.output_hw == last.output_hw == (5, 5)
    for row, col in ((0, 0), (2, 3), (4, 4)):
        assert first.box(row, col) == last.box(row, col)


def test_built_unit_data_stores_each_top_k_box_negative_coordinates_included(
    tmp_path, monkeypatch
):
    """C20: the unit data JSON keeps each top-k example's receptive-field
    box as [top, left, bottom, right]: for three 3x3 same convs (field 7)
    the box of position (row, col) is (row - 3, col - 3, row + 4, col + 4),
    and a unit peaking near the corner has a box that starts below 0."""
    import json

    from atlas.cli import main
    from tests.site_records import layer_units

    model = _chain(3)
    rng = np.random.default_rng(0)
    for layer in model.layers[1:]:
        layer.set_weights([rng.uniform(0.1, 1.0, (3, 3, 1, 1)).astype(np.float32)])
    model.save(tmp_path / "m.keras")
    # Dark images with a bright spot near a corner or in the middle.
    images = np.zeros((6, 8, 8, 1), np.uint8)
    for i, (row, col) in enumerate([(0, 0), (1, 0), (0, 7), (7, 7), (4, 4), (2, 5)]):
        images[i, row, col] = 250 - 10 * i
    np.save(tmp_path / "d.npy", images)
    (tmp_path / "site_config.toml").write_text(
        '[model]\npath = "m.keras"\ninput_range = [0.0, 1.0]\n'
        '[data]\npath = "d.npy"\n[layers]\nnames = ["c2"]\n'
        '[visualize]\npreset = "none"\nprogression = []\n'
        "[mine]\ntop_k = 6\nheatmaps = []\n"
    )
    monkeypatch.setenv("ATLAS_MAX_STEPS", "2")
    assert main(["build", "--config", str(tmp_path / "site_config.toml")]) == 0

    maps = np.asarray(model(images.astype(np.float32) / 255))[..., 0]
    site = tmp_path / "output"
    (layer,) = json.loads((site / "manifest.json").read_text())["layers"]
    (unit,) = layer_units(site, layer)
    assert len(unit["top_k"]) == 6
    for example in unit["top_k"]:
        row, col = np.unravel_index(np.argmax(maps[example["image"]]), (8, 8))
        assert example["box"] == [row - 3, col - 3, row + 4, col + 4]
    assert min(min(example["box"][:2]) for example in unit["top_k"]) < 0


@pytest.mark.parametrize(
    "augmentation",
    [
        lambda: keras.layers.RandomFlip("horizontal"),
        lambda: keras.layers.RandomRotation(0.1),
        lambda: keras.layers.RandomZoom(0.2),
        lambda: keras.layers.RandomContrast(0.3),
    ],
    ids=["flip", "rotation", "zoom", "contrast"],
)
def test_augmentation_layers_leave_the_field_as_at_inference(augmentation):
    """They pass images through unchanged at inference: a 3x3 conv behind
    them sees 3x3 pixels, not the whole image."""
    inputs = keras.Input((12, 12, 3))
    x = augmentation()(inputs)
    x = keras.layers.Rescaling(1 / 255)(x)
    model = keras.Model(inputs, _conv(x, 3, "c", padding="valid"))
    assert receptive_field(model, "c", (12, 12)).box(4, 5) == Box(4, 5, 7, 8)
