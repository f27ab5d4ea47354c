"""The keras.applications pixel conventions: the model gets the input it was
trained on, while the atlas works (and renders) in plain RGB pixels."""

from __future__ import annotations

import importlib
import json
import logging

import keras
import numpy as np
import pytest

from atlas import preprocess
from atlas.config import parse_settings
from atlas.errors import ConfigError, ModelError
from atlas.loading import (
    infer_input_range,
    input_text,
    load_model,
    pixel_convention,
)
from atlas.model import describe_layers
from atlas.receptive import receptive_field
from tests.helpers import build_small_atlas
from tests.site_records import layer_units

RNG = np.random.default_rng(0)
PIXELS = RNG.uniform(0, 255, (2, 8, 8, 3)).astype(np.float32)
# One module per convention, as keras.applications itself preprocesses.
REFERENCE = {
    "caffe": "keras.applications.vgg16",
    "tf": "keras.applications.mobilenet_v2",
    "torch": "keras.applications.densenet",
}


def _builders():
    return {
        name: builder
        for name, builder in vars(keras.applications).items()
        if callable(builder) and name[:1].isupper()
    }


def _reference(module: str, pixels: np.ndarray) -> np.ndarray:
    return np.asarray(importlib.import_module(module).preprocess_input(pixels.copy()))


@pytest.mark.parametrize("name", sorted(_builders()))
def test_every_application_gets_its_own_preprocess_input(name):
    builder = _builders()[name]
    convention = preprocess.resolve("auto", builder)
    expected = _reference(builder.__module__, PIXELS)
    if convention == "none":
        np.testing.assert_allclose(expected, PIXELS)  # the model scales itself
        return
    layer = preprocess.PixelConvention(convention)
    np.testing.assert_allclose(np.asarray(layer(PIXELS)), expected, atol=1e-4)


@pytest.mark.parametrize("convention", sorted(REFERENCE))
def test_a_configured_range_is_mapped_to_the_conventions_0_255(convention):
    layer = preprocess.PixelConvention(convention, (-1.0, 1.0))
    scaled = PIXELS / 127.5 - 1.0
    expected = _reference(REFERENCE[convention], PIXELS)
    np.testing.assert_allclose(np.asarray(layer(scaled)), expected, atol=1e-4)


def test_caffe_reverses_the_channels_and_subtracts_the_bgr_mean():
    red = np.zeros((1, 1, 1, 3), np.float32)
    red[..., 0] = 255.0
    out = np.asarray(preprocess.PixelConvention("caffe")(red))[0, 0, 0]
    np.testing.assert_allclose(out, [-103.939, -116.779, 255.0 - 123.68], atol=1e-4)


def _nested_rgb(scale_first: bool = False, name: str = "outer") -> keras.Model:
    keras.utils.set_random_seed(1)
    inner = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="inner_conv")],
        name="base",
    )
    layers = [keras.Input((8, 8, 3))]
    if scale_first:
        layers.append(keras.layers.Rescaling(1 / 255, name="scale"))
    layers += [
        inner,
        keras.layers.GlobalAveragePooling2D(name="pool"),
        keras.layers.Dense(3, name="head"),
    ]
    return keras.Sequential(layers, name=name)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "rgb.keras"
    _nested_rgb().save(path)
    return path


@pytest.mark.parametrize("convention", sorted(REFERENCE))
def test_a_model_file_gets_its_convention_in_front(saved, convention):
    original = keras.saving.load_model(saved)
    model = load_model(saved, preprocess=convention)
    expected = original(_reference(REFERENCE[convention], PIXELS))
    np.testing.assert_allclose(np.asarray(model(PIXELS)), expected, atol=1e-4)
    assert infer_input_range(model) == (0.0, 255.0)
    assert pixel_convention(model) == convention


def test_the_convention_layer_is_not_a_layer_of_the_atlas(saved):
    plain = load_model(saved, preprocess="none")
    model = load_model(saved, preprocess="caffe")
    names = [info.name for info in describe_layers(model)]
    assert names == [info.name for info in describe_layers(plain)]
    assert names == ["base/inner_conv", "pool", "head"]
    assert model.name == plain.name == "outer"
    # An elementwise front moves no receptive field.
    field = receptive_field(model, "base/inner_conv", (8, 8)).box(2, 3)
    assert field == receptive_field(plain, "base/inner_conv", (8, 8)).box(2, 3)


def test_a_file_model_is_fed_plain_pixels_by_default(saved):
    model = load_model(saved)
    assert pixel_convention(model) == "none"
    assert infer_input_range(model) == (0.0, 1.0)
    assert input_text(model, (0, 1)) == "pixels in [0, 1], as they are (no convention)"


def test_the_page_says_what_fed_the_model_in_every_case(tmp_path, saved):
    caffe = load_model(saved, preprocess="caffe")
    assert input_text(caffe, (0, 255)) == "BGR, minus the ImageNet mean (caffe)"
    _nested_rgb(scale_first=True).save(tmp_path / "scaled.keras")
    scaled = load_model(tmp_path / "scaled.keras")
    expected = "pixels in [0, 255]; the model's 'scale' scales them"
    assert input_text(scaled, infer_input_range(scaled)) == expected


@pytest.mark.parametrize(
    ("application", "front"),
    [("ResNet50", "caffe"), ("MobileNetV2", "tf"), ("DenseNet121", "torch")],
)
def test_an_application_gets_its_convention_automatically(application, front):
    model = load_model(None, (32, 32, 3), application=application, weights=None)
    assert pixel_convention(model) == front
    assert infer_input_range(model) == (0.0, 255.0)


def test_an_application_that_scales_itself_gets_no_convention():
    model = load_model(None, (32, 32, 3), application="EfficientNetB0", weights=None)
    assert pixel_convention(model) == "none"
    assert infer_input_range(model) == (0.0, 255.0)  # from its own Rescaling


def test_a_convention_on_a_grayscale_model_is_refused(tmp_path):
    path = tmp_path / "gray.keras"
    keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="c1")]
    ).save(path)
    with pytest.raises(ModelError) as error:
        load_model(path, preprocess="torch")
    message = str(error.value)
    assert "'torch'" in message and "1 channel" in message
    assert 'model.preprocess = "none"' in message


def test_scaling_twice_is_warned(tmp_path, caplog):
    path = tmp_path / "scaled.keras"
    _nested_rgb(scale_first=True).save(path)
    with caplog.at_level(logging.WARNING, logger="atlas.loading"):
        load_model(path, preprocess="tf")
    assert "scaled twice" in caplog.text and "'scale'" in caplog.text


def test_an_application_saved_to_a_file_gets_a_hint(tmp_path, caplog):
    path = tmp_path / "vgg.keras"
    _nested_rgb(name="vgg16").save(path)
    with caplog.at_level(logging.WARNING, logger="atlas.loading"):
        load_model(path)
    assert "keras.applications.VGG16" in caplog.text
    assert "model.preprocess" in caplog.text


def test_an_unknown_convention_is_a_config_error():
    raw = {
        "model": {"path": "m.keras", "preprocess": "bgr"},
        "data": {"path": "d.npz"},
        "layers": {"names": ["c1"]},
    }
    with pytest.raises(ConfigError) as error:
        parse_settings(raw)
    assert "model.preprocess" in str(error.value) and "'caffe'" in str(error.value)
    assert "'bgr'" in str(error.value)


def test_a_caffe_build_mines_what_the_model_sees_and_shows_rgb(tmp_path):
    """The mined values are the model's on caffe input; crops are the RGB
    pixels of the data; the index says which convention fed the model."""
    _nested_rgb().save(tmp_path / "rgb.keras")
    images = RNG.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "data.npz", x=images)
    output = build_small_atlas(
        tmp_path,
        'path = "rgb.keras"\npreprocess = "caffe"',
        ["base/inner_conv", "head"],
        top_k=3,
    )

    original = keras.saving.load_model(tmp_path / "rgb.keras")
    caffe = _reference(REFERENCE["caffe"], images.astype(np.float32))
    activations = np.asarray(original(caffe))
    manifest = json.loads((output / "manifest.json").read_text())
    conv, layer = manifest["layers"]
    assert conv["name"] == "base/inner_conv"
    for unit in layer_units(output, layer):
        column = activations[:, unit["index"]]
        order = np.lexsort((np.arange(len(column)), -column))[:3]
        assert [t["image"] for t in unit["top_k"]] == order.tolist()
        values = [t["value"] for t in unit["top_k"]]
        np.testing.assert_allclose(values, column[order], rtol=1e-4, atol=1e-4)
    assert "BGR, minus the ImageNet mean (caffe)" in (output / "index.html").read_text()


def test_a_caffe_unit_that_wants_red_renders_red(tmp_path):
    """Unit 0 reads the model's channel 2 (red, in BGR order), unit 1 its
    channel 0 (blue): their images must come out red and blue in RGB."""
    from PIL import Image

    inputs = keras.Input((8, 8, 3))
    pool = keras.layers.GlobalAveragePooling2D(name="pool")(inputs)
    head = keras.layers.Dense(2, name="head")
    model = keras.Model(inputs, head(pool), name="colours")
    head.set_weights([np.array([[0, 1], [0, 0], [1, 0]], np.float32), np.zeros(2)])
    model.save(tmp_path / "colours.keras")
    np.savez(tmp_path / "data.npz", x=RNG.integers(0, 256, (8, 8, 8, 3), np.uint8))
    output = build_small_atlas(
        tmp_path,
        'path = "colours.keras"\npreprocess = "caffe"',
        ["head"],
        heatmaps=False,
        steps=40,
    )
    (layer,) = json.loads((output / "manifest.json").read_text())["layers"]
    means = {}
    for unit in layer_units(output, layer):
        with Image.open(output / unit["images"]["l2"]) as image:
            means[unit["index"]] = np.asarray(image.convert("RGB"), float).mean((0, 1))
    red, _, blue = means[0]
    assert red > blue + 60
    red, _, blue = means[1]
    assert blue > red + 60


def test_an_application_builds_an_atlas_with_its_convention(tmp_path):
    np.savez(tmp_path / "data.npz", x=RNG.integers(0, 256, (6, 32, 32, 3), np.uint8))
    output = build_small_atlas(
        tmp_path,
        'application = "MobileNetV2"\nweights = "none"\ninput_shape = [32, 32, 3]',
        ["Conv1"],
        heatmaps=False,
        steps=2,
    )
    index = (output / "index.html").read_text()
    assert "keras.applications.MobileNetV2, weights=None" in index
    assert "RGB scaled to [-1, 1] (tf)" in index
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["model"]["input_range"] == [0.0, 255.0]
    assert manifest["model"]["preprocess"] == "tf"
