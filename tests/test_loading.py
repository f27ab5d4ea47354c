"""Loading models: applications, custom layers, legacy and unsafe files,
and the checks that refuse a model before any work (C04, C06, C07, C08, C12)."""

from __future__ import annotations

import json
import zipfile

import h5py
import keras
import numpy as np
import pytest

from atlas.config import parse_settings
from atlas.errors import ModelError
from atlas.loading import infer_input_range, load_model, open_model


def _small(inputs, *layers):
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x)


def test_application_by_name_with_random_weights():
    model = load_model(None, (32, 32, 3), application="MobileNetV2", weights=None)
    assert model.inputs[0].shape[1:] == (32, 32, 3)
    with pytest.raises(ModelError, match="did you mean 'MobileNetV2'"):
        load_model(None, application="MobileNetV3", weights=None)


def test_custom_module_beside_the_config_loads_custom_layers(tmp_path):
    (tmp_path / "my_layers.py").write_text(
        "import keras\n\n"
        "class Doubler(keras.layers.Layer):\n"
        "    def call(self, x):\n"
        "        return 2 * x\n"
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        from my_layers import Doubler

        model = _small(keras.Input((4, 4, 1)), Doubler(name="dbl"))
        model.save(tmp_path / "m.keras")
        raw = {
            "model": {"path": str(tmp_path / "m.keras")},
            "data": {"path": "d"},
            "layers": {"names": ["dbl"]},
        }
        with pytest.raises(ModelError, match="custom_module"):
            open_model(parse_settings(raw).model, tmp_path)
        raw["model"]["custom_module"] = "my_layers"
        loaded = open_model(parse_settings(raw).model, tmp_path)
        np.testing.assert_allclose(loaded(np.ones((1, 4, 4, 1))), 2.0)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("my_layers", None)


def test_lambda_layer_asks_for_the_safe_mode_opt_in(tmp_path):
    model = _small(keras.Input((4, 4, 1)), keras.layers.Lambda(lambda t: t * 2))
    model.save(tmp_path / "lam.keras")
    with pytest.raises(ModelError, match="model.safe_mode = false"):
        load_model(tmp_path / "lam.keras")
    loaded = load_model(tmp_path / "lam.keras", safe_mode=False)
    np.testing.assert_allclose(loaded(np.ones((1, 4, 4, 1))), 2.0)


def _with_groups(layers, names):
    for layer in layers:
        if layer["config"]["name"] in names:
            layer["config"]["groups"] = 1


def test_keras2_groups_argument_names_the_layer_and_kwarg(tmp_path):
    """C12: the message names the layer class, its own name(s) and the
    kwarg at fault, in an .h5 and in a .keras file."""
    model = _small(
        keras.Input((6, 6, 2)),
        keras.layers.DepthwiseConv2D(3, name="dw"),
        keras.layers.DepthwiseConv2D(1, name="dw_plain"),
    )
    path = tmp_path / "old.h5"
    model.save(path)
    with h5py.File(path, "r+") as file:
        config = json.loads(file.attrs["model_config"])
        _with_groups(config["config"]["layers"], {"dw"})
        file.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ModelError, match=r"DepthwiseConv2D.*'groups'.*re-save") as h5:
        load_model(path)
    assert "DepthwiseConv2D layers ('dw') carry" in str(h5.value)

    model.save(tmp_path / "new.keras")
    with zipfile.ZipFile(tmp_path / "new.keras") as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    _with_groups(config["config"]["layers"], {"dw", "dw_plain"})
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(tmp_path / "old.keras", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    with pytest.raises(ModelError) as keras_file:
        load_model(tmp_path / "old.keras")
    assert "DepthwiseConv2D layers ('dw', 'dw_plain') carry" in str(keras_file.value)


def test_exported_savedmodel_says_to_resave(tmp_path):
    model = _small(keras.Input((4, 4, 1)), keras.layers.Conv2D(2, 3))
    model.export(tmp_path / "exported", verbose=False)
    with pytest.raises(ModelError, match="SavedModel.*model.keras"):
        load_model(tmp_path / "exported")


def test_nan_weights_are_refused_naming_the_layer(tmp_path):
    conv = keras.layers.Conv2D(2, 3, name="broken")
    model = _small(keras.Input((4, 4, 1)), conv)
    conv.kernel.assign(np.full(conv.kernel.shape, np.nan, np.float32))
    model.save(tmp_path / "nan.keras")
    with pytest.raises(ModelError, match="NaN or infinite weights in broken"):
        load_model(tmp_path / "nan.keras")


def test_multi_input_model_names_its_inputs(tmp_path):
    image = keras.Input((4, 4, 1), name="image")
    extra = keras.Input((3,), name="extra")
    flat = keras.layers.Flatten()(image)
    joined = keras.layers.Concatenate()([flat, extra])
    model = keras.Model([image, extra], keras.layers.Dense(2)(joined))
    model.save(tmp_path / "two.keras")
    with pytest.raises(ModelError, match=r"2 inputs.*image.*extra"):
        load_model(tmp_path / "two.keras")


@pytest.mark.parametrize(
    "shape, layer",
    [
        ((10, 3), keras.layers.Conv1D(2, 3)),
        ((4, 8, 8, 1), keras.layers.ConvLSTM2D(2, 3)),
    ],
)
def test_non_image_inputs_are_refused_before_any_work(tmp_path, shape, layer):
    _small(keras.Input(shape), layer).save(tmp_path / "seq.keras")
    with pytest.raises(ModelError, match=f"rank {len(shape) + 1}"):
        load_model(tmp_path / "seq.keras")


def test_rescaling_first_means_raw_pixels_and_mined_values_match(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((5, 5, 1))
    model = _small(
        inputs,
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(2, 3, name="c"),
    )
    assert infer_input_range(model) == (0.0, 255.0)
    plain = _small(keras.Input((5, 5, 1)), keras.layers.Conv2D(2, 3))
    assert infer_input_range(plain) == (0.0, 1.0)


def _augmentation():
    return keras.Sequential(
        [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1)],
        name="augment",
    )


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        (lambda: [_augmentation(), keras.layers.Rescaling(1 / 255)], (0.0, 255.0)),
        (
            lambda: [keras.layers.Resizing(6, 6), keras.layers.Rescaling(1 / 255)],
            (0.0, 255.0),
        ),
        (
            lambda: [keras.layers.Dropout(0.1), keras.layers.Rescaling(1 / 127.5, -1)],
            (0.0, 255.0),
        ),
        (
            lambda: [keras.layers.Normalization(mean=120.0, variance=3000.0)],
            (0.0, 255.0),
        ),
        (lambda: [keras.layers.Normalization(mean=0.45, variance=0.05)], (0.0, 1.0)),
        (
            lambda: [keras.layers.Conv2D(1, 1), keras.layers.Rescaling(1 / 255)],
            (0.0, 1.0),
        ),
    ],
    ids=[
        "augment",
        "resizing",
        "dropout",
        "normalize-raw",
        "normalize-01",
        "conv-first",
    ],
)
def test_rescaling_behind_augmentation_or_resizing_is_found(tmp_path, front, expected):
    """C08 for the tutorials' shapes: the scaling layer the input meets first,
    past layers that keep pixel values at inference, decides the range."""
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), *front(), keras.layers.Conv2D(2, 3, name="c")]
    )
    model.save(tmp_path / "m.keras")
    assert infer_input_range(load_model(tmp_path / "m.keras")) == expected


def _softmax_head(activation) -> keras.Model:
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, name="c")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(
        inputs, keras.layers.Dense(3, activation=activation, name="sm")(x)
    )


def test_a_tensorflow_activation_is_found_by_name_and_read_as_logits(tmp_path):
    """C10 on load: Dense(activation=tf.nn.softmax) is saved as 'softmax_v2',
    which Keras alone cannot load back."""
    import tensorflow as tf

    from atlas.model import describe_layers

    original = _softmax_head(tf.nn.softmax)
    original.save(tmp_path / "tf.keras")
    with pytest.raises(TypeError):
        keras.saving.load_model(tmp_path / "tf.keras")
    model = load_model(tmp_path / "tf.keras")
    x = np.random.default_rng(0).uniform(0, 1, (2, 6, 6, 1)).astype(np.float32)
    np.testing.assert_allclose(model(x), original(x), atol=1e-6)
    head = next(info for info in describe_layers(model) if info.name == "sm")
    assert head.uses_logits


def test_a_function_of_the_users_own_names_the_layer_and_the_fix(tmp_path):
    def squash(x):
        return x / (1 + abs(x))

    _softmax_head(squash).save(tmp_path / "own.keras")
    with pytest.raises(ModelError) as error:
        load_model(tmp_path / "own.keras")
    message = str(error.value)
    assert "layer 'sm' uses 'squash'" in message
    assert "model.custom_module" in message and "custom_objects" in message
