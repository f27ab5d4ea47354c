"""Per-sample random transforms: hand-computed shifts, independence."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

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


def _ramp(height, width, channels=1, batch=1):
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    ramp = (0.3 * rows + 0.7 * cols).astype(np.float32)
    return np.broadcast_to(ramp[None, ..., None], (batch, height, width, channels))


def test_pad_adds_a_zero_border_and_crop_takes_the_centre():
    x = np.arange(2 * 3 * 1, dtype=np.float32).reshape(1, 2, 3, 1) + 1
    padded = transforms.pad(tf.constant(x), 2).numpy()
    assert padded.shape == (1, 6, 7, 1)
    assert padded.sum() == x.sum() and padded[0, 2, 2, 0] == 1
    np.testing.assert_array_equal(transforms.crop(tf.constant(padded), 2, 3), x)
    odd = transforms.crop(tf.constant(padded), 3, 4).numpy()[0, ..., 0]
    np.testing.assert_array_equal(odd, padded[0, 1:4, 1:5, 0])


@pytest.mark.parametrize("factor", [0.8, 1.0, 1.25])
def test_scale_magnifies_a_ramp_about_the_centre(factor):
    x = _ramp(9, 12, channels=2)
    got = transforms.scale(tf.constant(x), tf.constant([factor])).numpy()[0]
    rows, cols = np.meshgrid(np.arange(9.0), np.arange(12.0), indexing="ij")
    source_r = 4.0 + (rows - 4.0) / factor
    source_c = 5.5 + (cols - 5.5) / factor
    want = 0.3 * source_r + 0.7 * source_c
    inside = (source_r >= 0) & (source_r <= 8) & (source_c >= 0) & (source_c <= 11)
    np.testing.assert_allclose(got[..., 0][inside], want[inside], atol=1e-4)
    np.testing.assert_array_equal(got[..., 0], got[..., 1])


def test_scale_equals_scipy_bilinear_with_zero_fill():
    x = np.random.default_rng(0).random((2, 7, 9, 3)).astype(np.float32)
    got = transforms.scale(tf.constant(x), tf.constant([1.3, 0.7])).numpy()
    for n, factor in enumerate((1.3, 0.7)):
        centre = np.array([3.0, 4.0])
        matrix = np.eye(2) / factor
        offset = centre - matrix @ centre
        for c in range(3):
            want = ndimage.affine_transform(
                x[n, ..., c], matrix, offset, order=1, mode="constant", cval=0.0
            )
            np.testing.assert_allclose(
                got[n, 1:-1, 1:-1, c], want[1:-1, 1:-1], atol=1e-5
            )


def test_rotate_turns_a_ramp_counter_clockwise():
    x = _ramp(21, 21)
    got = transforms.rotate(tf.constant(x), tf.constant([10.0])).numpy()[0, ..., 0]
    rows, cols = np.meshgrid(np.arange(21.0), np.arange(21.0), indexing="ij")
    angle = np.deg2rad(10.0)
    # A counter-clockwise turn on screen reads the source turned clockwise.
    source_r = 10 + np.cos(angle) * (rows - 10) + np.sin(angle) * (cols - 10)
    source_c = 10 - np.sin(angle) * (rows - 10) + np.cos(angle) * (cols - 10)
    want = 0.3 * source_r + 0.7 * source_c
    np.testing.assert_allclose(got[4:-4, 4:-4], want[4:-4, 4:-4], atol=1e-4)
    assert got[2, 17] == pytest.approx(want[2, 17], abs=1e-4)


def test_rotate_by_zero_and_scale_by_one_are_the_identity():
    x = np.random.default_rng(1).random((2, 5, 6, 1)).astype(np.float32)
    for moved in (
        transforms.rotate(tf.constant(x), tf.constant([0.0, 0.0])),
        transforms.scale(tf.constant(x), tf.constant([1.0, 1.0])),
    ):
        np.testing.assert_allclose(moved.numpy(), x, atol=1e-6)


def test_random_transform_jitter_is_an_exact_shift_with_zero_fill():
    x = np.arange(1, 1 + 6 * 7, dtype=np.float32).reshape(1, 6, 7, 1)
    draws = {
        "rows": tf.constant([0.99]),  # floor(0.99 * 5) - 2 = +2
        "columns": tf.constant([0.0]),  # -2
        "scale": tf.constant([0.5]),
        "rotate": tf.constant([0.5]),
    }
    got = transforms.random_transform(
        tf.constant(x), draws, padding=2, jitter_pixels=2
    ).numpy()[0, ..., 0]
    want = np.zeros((6, 7), np.float32)
    want[2:, :5] = x[0, :4, 2:, 0]
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_random_transform_of_a_sample_does_not_depend_on_its_batch():
    x = np.random.default_rng(2).random((3, 8, 8, 2)).astype(np.float32)
    keys = tf.constant([5, 6, 7], tf.int64)
    draws = transforms.draws_at(tf.constant(1), keys, tf.constant(3))
    options = {"jitter_pixels": 2, "scales": (0.8, 1.2), "degrees": 10.0}
    step = {name: values[2] for name, values in draws.items()}
    full = transforms.random_transform(tf.constant(x), step, **options).numpy()
    alone = transforms.draws_at(tf.constant(1), keys[1:2], tf.constant(3))
    step_alone = {name: values[2] for name, values in alone.items()}
    one = transforms.random_transform(tf.constant(x[1:2]), step_alone, **options)
    np.testing.assert_array_equal(full[1], one.numpy()[0])


def test_affine_gradient_is_the_adjoint_of_the_resample():
    x = tf.constant(np.random.default_rng(3).random((2, 6, 7, 2)), tf.float32)
    y = tf.constant(np.random.default_rng(4).random((2, 6, 7, 2)), tf.float32)
    maps = transforms.centred_maps(
        x, tf.constant([1.1, 0.9]), tf.constant([7.0, -12.0])
    )
    with tf.GradientTape() as tape:
        tape.watch(x)
        inner = tf.reduce_sum(transforms.affine(x, maps) * y)
    grad = tape.gradient(inner, x)
    # <A x, y> = <x, A^T y> and the gradient of <A x, y> is A^T y.
    np.testing.assert_allclose(float(tf.reduce_sum(x * grad)), float(inner), rtol=1e-5)


def test_draws_at_equals_the_per_step_draws():
    keys = tf.constant([3, 9], tf.int64)
    table = transforms.draws_at(tf.constant(5), keys, tf.constant(4))
    np.testing.assert_array_equal(table["rows"][2].numpy(), _draws(5, [3, 9], 2, 1))
    np.testing.assert_array_equal(table["scale"][3].numpy(), _draws(5, [3, 9], 3, 3))
