"""C04: channels_first models are re-made in channels_last order, exactly:
unit c of a layer is its channel c (axis 1 of the original)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from atlas.errors import ModelError
from atlas.model import describe_layers, feature_model, load_model, select_layers
from atlas.receptive import receptive_field
from atlas.records import Box

CF = "channels_first"
X = np.random.default_rng(0).uniform(0, 1, (2, 10, 10, 3)).astype(np.float32)


def _first(flatten_format: str | None, head: str = "flatten") -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3, 10, 10))
    x = keras.layers.Conv2D(4, 3, padding="same", data_format=CF, name="c1")(inputs)
    x = keras.layers.BatchNormalization(axis=1, name="bn")(x)
    x = keras.layers.Activation("relu", name="act")(x)
    x = keras.layers.MaxPooling2D(2, data_format=CF, name="pool")(x)
    x = keras.layers.Conv2D(5, 3, data_format=CF, name="c2", activation="relu")(x)
    if head == "flatten":
        x = keras.layers.Flatten(data_format=flatten_format, name="flat")(x)
    else:
        x = keras.layers.GlobalAveragePooling2D(data_format=CF, name="gap")(x)
    outputs = keras.layers.Dense(3, name="out")(x)
    model = keras.Model(inputs, outputs, name="first")
    bn = model.get_layer("bn")
    rng = np.random.default_rng(1)
    bn.set_weights([rng.uniform(0.5, 2, 4).astype(np.float32) for _ in range(4)])
    return model


def _reference(first: keras.Model, flatten_format: str | None, head: str):
    """The same network written by hand in channels_last, weights copied;
    a Flatten that read C, H, W gets its Dense rows reordered to H, W, C."""
    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c1")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(5, 3, name="c2", activation="relu")(x)
    if head == "flatten":
        x = keras.layers.Flatten()(x)
    else:
        x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, name="out")(x)
    model = keras.Model(inputs, outputs)
    for name in ("c1", "bn", "c2"):
        model.get_layer(name).set_weights(first.get_layer(name).get_weights())
    kernel, bias = first.get_layer("out").get_weights()
    if head == "flatten" and flatten_format != CF:
        # Original rows are in (C, H, W) order; the reference flattens (H, W, C).
        kernel = kernel.reshape(5, 3, 3, 3).transpose(1, 2, 0, 3).reshape(45, 3)
    model.get_layer("out").set_weights([kernel, bias])
    return model


@pytest.mark.parametrize(
    ("flatten_format", "head"),
    [(None, "flatten"), (CF, "flatten"), (None, "global")],
    ids=["flatten-chw", "flatten-channels-first", "global-pool"],
)
def test_a_channels_first_model_is_re_made_exactly(tmp_path, flatten_format, head):
    first = _first(flatten_format, head)
    first.save(tmp_path / "first.keras")
    model = load_model(tmp_path / "first.keras")
    reference = _reference(first, flatten_format, head)
    np.testing.assert_allclose(model(X), reference(X), atol=1e-5)
    infos = {info.name: info for info in describe_layers(model)}
    assert infos["c1"].units == 4 and infos["c2"].units == 5  # axis 1's channels
    chosen = select_layers(list(infos.values()), ["c2"])
    extracted = feature_model(model, chosen)(X)
    by_hand = keras.Model(reference.inputs[0], reference.get_layer("c2").output)(X)
    np.testing.assert_allclose(extracted, by_hand, atol=1e-5)
    assert model.name == "first"
    field = receptive_field(model, "c2", (10, 10)).box(1, 2)
    assert field == receptive_field(reference, "c2", (10, 10)).box(1, 2)
    assert field == Box(1, 3, 9, 11)


def test_a_nested_channels_first_backbone_keeps_its_qualified_names(tmp_path):
    inner_input = keras.Input((3, 8, 8))
    conv = keras.layers.Conv2D(2, 3, data_format=CF, name="icf")(inner_input)
    inner = keras.Model(inner_input, conv, name="bb")
    outer_input = keras.Input((3, 8, 8))
    pooled = keras.layers.GlobalAveragePooling2D(data_format=CF)(inner(outer_input))
    keras.Model(outer_input, keras.layers.Dense(2)(pooled)).save(tmp_path / "n.keras")
    model = load_model(tmp_path / "n.keras")
    assert "bb/icf" in [info.name for info in describe_layers(model)]


def test_a_layer_that_moves_image_axes_is_refused_by_name(tmp_path):
    inputs = keras.Input((3, 8, 8))
    x = keras.layers.Conv2D(2, 3, data_format=CF, name="c")(inputs)
    x = keras.layers.Reshape((2, 36, 1), name="odd_reshape")(x)
    keras.Model(inputs, x).save(tmp_path / "r.keras")
    with pytest.raises(ModelError) as error:
        load_model(tmp_path / "r.keras")
    message = str(error.value)
    assert "'odd_reshape'" in message and "channels_last" in message


def test_a_model_mixing_formats_is_refused(tmp_path):
    inputs = keras.Input((3, 8, 8))
    x = keras.layers.Conv2D(2, 3, data_format=CF, name="c")(inputs)
    x = keras.layers.Conv2D(2, 1, data_format="channels_last", name="last")(x)
    keras.Model(inputs, x).save(tmp_path / "m.keras")
    with pytest.raises(ModelError, match="mixes data formats.*'last'"):
        load_model(tmp_path / "m.keras")


@pytest.mark.parametrize("head", ["flatten", "global"])
def test_a_channels_first_atlas_equals_its_channels_last_twins(tmp_path, head):
    """Top-k values and class influence of a re-made model equal those of
    the same network written channels_last by hand."""
    import json

    from tests.helpers import build_small_atlas
    from tests.site_records import layer_units

    first = _first(None, head)
    reference = _reference(first, None, head)
    rng = np.random.default_rng(2)
    data = {
        "x": rng.integers(0, 256, (12, 10, 10, 3), np.uint8),
        "y": rng.integers(0, 3, 12),
    }
    units = {}
    for name, model in (("first", first), ("twin", reference)):
        (tmp_path / name).mkdir()
        model.save(tmp_path / name / "m.keras")
        np.savez(tmp_path / name / "data.npz", **data)
        site = build_small_atlas(tmp_path / name, 'path = "m.keras"', ["c2"])
        (layer,) = json.loads((site / "manifest.json").read_text())["layers"]
        units[name] = layer_units(site, layer)
    assert len(units["first"]) == 5
    promoted = 0
    for mine, theirs in zip(units["first"], units["twin"], strict=True):
        for key in ("top_k", "promotes", "suppresses"):
            assert len(mine[key]) == len(theirs[key])
        for ours, twin in zip(mine["top_k"], theirs["top_k"], strict=True):
            assert ours["image"] == twin["image"]
            assert ours["value"] == pytest.approx(twin["value"], rel=1e-4, abs=1e-5)
        for ours, twin in zip(mine["promotes"], theirs["promotes"], strict=True):
            assert ours["label"] == twin["label"]
            assert ours["weight"] == pytest.approx(twin["weight"], rel=1e-3, abs=1e-5)
        promoted += len(mine["promotes"])
    assert promoted > 0
