"""The compiled ascent: it raises objectives, is batch-independent,
deterministic, revives inactive ReLU units and traces once per shape."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
from scipy import ndimage

from atlas.model import ascent_model, describe_layers, layer_output, select_layers
from atlas.visualize import PRESETS, synthesize, tracing_count
from atlas.visualize.objectives import layer_objectives
from tests.helpers import digits_like_model

STEPS = 200
CANVAS = (12, 12, 1)


@pytest.fixture(scope="module")
def model():
    return digits_like_model()


def _run(model, name, units, preset="yosinski-3-jitter", **options):
    info = select_layers(describe_layers(model), [name])[0]
    options = {"steps": STEPS, "chunk": 8, "seed": 0, **options}
    return synthesize(
        ascent_model(model, info),
        info,
        units,
        PRESETS[preset],
        canvas=CANVAS,
        input_range=(0.0, 1.0),
        **options,
    )


def _dataset_objective(model, name):
    info = select_layers(describe_layers(model), [name])[0]
    # Smooth random images stand in for a dataset: like real photographs,
    # and unlike white noise, most of their energy is at low frequencies.
    noise = np.random.default_rng(0).normal(size=(64, *CANVAS))
    smooth = ndimage.gaussian_filter(noise, sigma=(0, 1.5, 1.5, 0))
    images = ((smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)
    output = keras.Model(model.inputs[0], layer_output(model, info))(images)
    return np.asarray(layer_objectives(output, info.kind, "channel"))


@pytest.mark.parametrize("name", ["c1", "c2", "fc", "probs"])
@pytest.mark.parametrize("preset", ["yosinski-3", "yosinski-3-jitter", "none"])
def test_synthesize_raises_every_live_unit(model, name, preset):
    data = _dataset_objective(model, name)
    units = range(data.shape[1])
    result = _run(model, name, units, preset=preset)
    for unit in units:
        if data[:, unit].max() <= 0:
            continue
        assert result.final[unit] > result.start[unit], unit
        assert result.final[unit] > data[:, unit].mean(), unit


def test_synthesize_image_does_not_depend_on_its_batch(model):
    first = _run(model, "c2", [0, 1, 2])
    second = _run(model, "c2", [5, 4, 2])
    np.testing.assert_array_equal(first.images[2], second.images[2])


def test_synthesize_same_seed_same_bytes_other_seed_other_image(model):
    one = _run(model, "fc", range(5))
    two = _run(model, "fc", range(5))
    assert one.images.tobytes() == two.images.tobytes()
    other = _run(model, "fc", range(5), seed=1)
    assert not np.array_equal(one.images, other.images)


def test_synthesize_images_stay_in_the_input_range(model):
    result = _run(model, "probs", range(3), preset="none")
    assert result.images.dtype == np.float32
    assert result.images.min() >= 0.0 and result.images.max() <= 1.0
    assert np.isfinite(result.images).all()


def test_synthesize_revives_a_unit_that_is_off_on_its_start_image():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(CANVAS)
    conv = keras.layers.Conv2D(2, 3, activation="relu", name="c")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[1, 1, 0, :] = 1.0
    # Unit 0 fires only above 0.9 (dormant); unit 1 never fires (dead).
    conv.set_weights([kernel, np.array([-0.9, -5.0], np.float32)])
    result = _run(model, "c", [0, 1], preset="yosinski-3", steps=400)
    assert result.start[0] == 0.0 and result.final[0] > 0.0
    assert result.start[1] == 0.0 and result.final[1] == 0.0


def test_synthesize_traces_once_for_64_units_of_a_layer():
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(64, 3, name="wide")(inputs))
    info = select_layers(describe_layers(model), ["wide"])[0]
    layer_model = ascent_model(model, info)
    synthesize(
        layer_model,
        info,
        range(64),
        dataclasses.replace(PRESETS["yosinski-3"], steps=3),
        canvas=(8, 8, 1),
        input_range=(0.0, 1.0),
        chunk=8,
    )
    assert tracing_count(layer_model) == 1
