"""Per-sample random transforms: hand-computed shifts, independence."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from atlas.visualize import transforms


def _draws(seed, units, step, salt):
    return transforms.uniform(
        tf.constant(seed), tf.constant(units), tf.constant(step), salt
    ).numpy()


def test_uniform_is_per_unit_and_spread():
    draws = _draws(0, np.arange(20000), 3, 1)
    assert 0 <= draws.min() and draws.max() < 1
    counts, _ = np.histogram(draws, bins=10, range=(0, 1))
    assert counts.min() > 1800 and counts.max() < 2200
    alone = _draws(0, [7], 3, 1)
    assert alone[0] == draws[7]
    assert _draws(1, [7], 3, 1)[0] != alone[0]
    assert _draws(0, [7], 4, 1)[0] != alone[0]


def test_jitter_shifts_each_sample_by_its_drawn_offset():
    x = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6, 1)
    units, seed, step, pixels = np.array([3, 9]), 5, 2, 2
    got = transforms.jitter(
        tf.constant(x), pixels, tf.constant(seed), tf.constant(units), step
    ).numpy()
    for n in range(2):
        dy, dx = (
            int(np.floor(_draws(seed, units, step, salt)[n] * 5)) - pixels
            for salt in (1, 2)
        )
        rows = np.clip(np.arange(5) - dy, 0, 4)
        cols = np.clip(np.arange(6) - dx, 0, 5)
        np.testing.assert_array_equal(got[n], x[n][rows][:, cols])


def test_jitter_of_zero_pixels_is_the_identity():
    x = tf.random.normal((2, 4, 4, 3))
    same = transforms.jitter(x, 0, tf.constant(0), tf.constant([0, 1]), 0)
    assert same is x
