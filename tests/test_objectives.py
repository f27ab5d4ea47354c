"""Objectives against hand-computed values, and C10: a saturated softmax is
climbed on its logits, without touching the user's model."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from atlas.errors import ConfigError, ModelError
from atlas.model import ascent_model, describe_layers, select_layers
from atlas.visualize.objectives import (
    ascent_objectives,
    check_objective,
    layer_objectives,
    similarity,
    unit_objectives,
)


def test_layer_objectives_channel_neuron_and_dense():
    output = np.arange(2 * 3 * 4 * 2, dtype=np.float32).reshape(2, 3, 4, 2)
    channel = layer_objectives(tf.constant(output), "conv", "channel").numpy()
    np.testing.assert_allclose(channel, output.mean(axis=(1, 2)))
    neuron = layer_objectives(tf.constant(output), "conv", "neuron").numpy()
    np.testing.assert_array_equal(neuron, output[:, 1, 2, :])
    dense = np.array([[1.0, -2.0]], np.float32)
    np.testing.assert_array_equal(layer_objectives(dense, "dense", "neuron"), dense)


def test_unit_objectives_read_each_sample_own_unit():
    table = tf.constant([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    got = unit_objectives(table, tf.constant([2, 0])).numpy()
    np.testing.assert_array_equal(got, [3.0, 4.0])


def test_ascent_objectives_redirect_off_units_and_negate_negatives():
    post = tf.constant([0.0, 2.0, 0.0, 2.0])
    pre = tf.constant([-3.0, 2.0, -3.0, 2.0])
    signs = tf.constant([1.0, 1.0, -1.0, -1.0])
    got = ascent_objectives(post, pre, signs).numpy()
    np.testing.assert_array_equal(got, [-3.0, 2.0, 3.0, -2.0])


def test_similarity_of_identical_orthogonal_and_opposite_samples():
    dense = tf.constant([[[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]]])  # (1, 3, 2)
    got = similarity(dense).numpy()
    np.testing.assert_allclose(got, [[0.5, 0.5, 0.0]], atol=1e-6)
    conv = np.zeros((1, 2, 2, 2, 2), np.float32)
    conv[0, 0, 0, 0] = [1.0, 0.0]  # Gram diag(1, 0)
    conv[0, 1, 1, 1] = [0.0, 3.0]  # Gram diag(0, 9): orthogonal Grams
    np.testing.assert_allclose(similarity(tf.constant(conv)).numpy(), [[0.0, 0.0]])


def test_check_objective_names_the_bad_value():
    with pytest.raises(ConfigError, match=r"unknown objective 'centre'"):
        check_objective("centre", "conv")
    with pytest.raises(ModelError, match=r"kind 'video'"):
        check_objective("channel", "video")


@pytest.mark.parametrize(
    "activation",
    [
        "softmax",
        tf.nn.softmax,
        tf.math.sigmoid,
        "hard_sigmoid",
        keras.activations.softmax,
    ],
    ids=["softmax", "tf.nn.softmax", "tf.math.sigmoid", "hard_sigmoid", "keras"],
)
def test_saturated_softmax_is_climbed_on_its_logits_and_the_model_is_kept(activation):
    """C10, for every squashing activation however it is named."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    head = keras.layers.Dense(3, activation=activation, name="probs")
    model = keras.Model(inputs, head(inputs))
    head.set_weights([np.eye(4, 3, dtype=np.float32) * 50, np.zeros(3, np.float32)])
    info = select_layers(describe_layers(model), ["probs"])[0]
    assert info.uses_logits

    x = tf.constant([[1.0, 0.0, 0.0, 0.0]])
    probabilities = model(x).numpy()
    assert probabilities[0, 0] == pytest.approx(1.0)  # saturated (softmax or sigmoid)
    with tf.GradientTape() as tape:
        tape.watch(x)
        saturated = model(x)[:, 0]
    assert np.abs(tape.gradient(saturated, x).numpy()).max() < 1e-12

    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = ascent_model(model, info)(x)
        objective = unit_objectives(layer_objectives(logits, "dense", "channel"), [0])
    np.testing.assert_allclose(tape.gradient(objective, x).numpy(), [[50, 0, 0, 0]])
    assert head.activation is keras.activations.get(activation)
    np.testing.assert_array_equal(model(x).numpy(), probabilities)
