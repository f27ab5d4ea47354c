"""Nested models (C01) and Sequential models without `.input` (C02)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from atlas.errors import ModelError
from atlas.model import (
    describe_layers,
    feature_model,
    input_spec,
    layer_output,
    load_model,
    select_layers,
)


def _inner() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="inner_conv")],
        name="base",
    )


@pytest.mark.parametrize("prefix", [[], [keras.layers.Rescaling(0.5, name="pre")]])
def test_nested_layers_are_listed_qualified_and_read_exactly(tmp_path, prefix):
    inner = _inner()
    outer = keras.Sequential(
        [keras.Input((8, 8, 1)), *prefix, inner, keras.layers.Flatten()]
        + [keras.layers.Dense(3, name="head")]
    )
    outer.save(tmp_path / "nested.keras")
    model = load_model(tmp_path / "nested.keras")
    names = [info.name for info in describe_layers(model)]
    assert "base/inner_conv" in names and "head" in names
    infos = select_layers(describe_layers(model), ["base/inner_conv", "head"])
    assert infos[0].units == 4
    x = np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32)
    conv, head = feature_model(model, infos)(x)
    scale = 0.5 if prefix else 1.0
    np.testing.assert_allclose(conv, inner.layers[-1](x * scale), atol=1e-6)
    np.testing.assert_allclose(head, outer(x), atol=1e-6)


def test_nested_functional_with_batch_norm_keeps_its_outputs():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 3, name="c")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    backbone = keras.Model(inputs, x, name="bb")
    outer_in = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(outer_in))
    outer = keras.Model(outer_in, keras.layers.Dense(2, name="out")(pooled))
    backbone.get_layer("bn").moving_mean.assign([0.3, -0.2])
    from atlas.graph import flatten

    flat = flatten(outer)
    images = np.random.default_rng(1).random((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(flat(images), outer(images), atol=1e-6)
    names = [info.name for info in describe_layers(flat)]
    assert names[:2] == ["bb/c", "bb/bn"]


def test_sequential_with_or_without_input_works_and_unbuilt_says_the_key(tmp_path):
    layers = [keras.layers.Conv2D(2, 3, name="c"), keras.layers.Flatten()]
    with_input = keras.Sequential([keras.Input((6, 6, 1)), *layers])
    with_input.save(tmp_path / "a.keras")
    assert input_spec(load_model(tmp_path / "a.keras")) == (6, 6, 1)

    built = keras.Sequential(
        [keras.layers.Conv2D(2, 3, name="c2"), keras.layers.Flatten()]
    )
    built.build((None, 7, 7, 1))
    built.save(tmp_path / "b.keras")
    model = load_model(tmp_path / "b.keras")
    assert input_spec(model) == (7, 7, 1)
    assert [i.name for i in describe_layers(model)][0] == "c2"

    unbuilt = keras.Sequential(
        [keras.layers.Conv2D(2, 3, name="c3"), keras.layers.Flatten()], name="lazy"
    )
    unbuilt.save(tmp_path / "c.keras")
    with pytest.raises(ModelError, match=r"'lazy'.*model.input_shape"):
        load_model(tmp_path / "c.keras")
    model = load_model(tmp_path / "c.keras", input_shape=(5, 5, 1))
    assert input_spec(model) == (5, 5, 1)


def test_a_nested_model_called_twice_shares_one_twin(tmp_path):
    """C01: a backbone applied to two inputs is flattened with its layers
    shared, listed once, read at their first call; the output is the same."""
    inner_input = keras.Input((8, 8, 1))
    shared = keras.Model(
        inner_input, keras.layers.Conv2D(2, 3, name="sc")(inner_input), name="shared"
    )
    outer_input = keras.Input((8, 8, 1))
    left = shared(outer_input)
    right = shared(keras.layers.Rescaling(-1.0, name="negate")(outer_input))
    outer = keras.Model(outer_input, keras.layers.Add(name="join")([left, right]))
    outer.save(tmp_path / "m.keras")
    model = load_model(tmp_path / "m.keras")
    names = [info.name for info in describe_layers(model)]
    assert names.count("shared/sc") == 1
    x = np.random.default_rng(0).uniform(0, 1, (2, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(model(x), outer(x), atol=1e-6)
    info = select_layers(describe_layers(model), ["shared/sc"])[0]
    first = keras.Model(model.inputs[0], layer_output(model, info))
    np.testing.assert_allclose(first(x), shared(x), atol=1e-6)
