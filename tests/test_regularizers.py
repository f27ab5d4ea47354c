"""Yosinski et al. (2015) regularizers against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

from atlas.visualize import regularizers


def test_decay_scales_toward_the_mean():
    x = tf.constant([[[[2.0], [-4.0]]]])
    np.testing.assert_allclose(regularizers.decay(x, 0.25), [[[[1.5], [-3.0]]]])


def test_gaussian_kernel_has_radius_three_sigma_and_unit_sum():
    kernel = regularizers.gaussian_kernel(1.0)
    weights = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    np.testing.assert_allclose(kernel, weights / weights.sum(), rtol=1e-6)
    assert len(regularizers.gaussian_kernel(0.5)) == 5


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_blur_equals_scipy_reflect_filter(sigma):
    x = np.random.default_rng(0).normal(size=(2, 9, 7, 3)).astype(np.float32)
    got = regularizers.blur(tf.constant(x), sigma).numpy()
    want = ndimage.gaussian_filter(
        x, sigma=(0, sigma, sigma, 0), mode="reflect", truncate=3.0
    )
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_blur_of_an_image_smaller_than_the_kernel_keeps_a_flat_mean():
    x = tf.fill((1, 2, 3, 1), 0.7)
    np.testing.assert_allclose(regularizers.blur(x, 2.0), np.full((1, 2, 3, 1), 0.7))


def test_percentile_matches_numpy_linear():
    values = np.random.default_rng(1).normal(size=(3, 11)).astype(np.float32)
    for q in (0, 20, 50, 90, 100):
        got = regularizers.percentile(tf.constant(values), q).numpy()
        np.testing.assert_allclose(got, np.percentile(values, q, axis=1), rtol=1e-5)


def test_clip_small_norm_zeroes_pixels_below_the_percentile():
    # Pixel norms 1, 2, 3, 4: the 50th percentile is 2.5.
    x = np.array([[1, 0], [0, 2], [3, 0], [0, -4]], np.float32).reshape(1, 2, 2, 2)
    got = regularizers.clip_small_norm(tf.constant(x), 50).numpy()
    want = x.copy()
    want[0, 0, :] = 0
    np.testing.assert_array_equal(got, want)


def test_clip_small_contribution_uses_abs_of_x_times_grad():
    x = np.array([1, 2, 3, 4], np.float32).reshape(1, 2, 2, 1)
    grad = np.array([4, -1, 0.1, -1], np.float32).reshape(1, 2, 2, 1)
    # Contributions |x * g|: 4, 2, 0.3, 4; the 50th percentile is 3.
    got = regularizers.clip_small_contribution(tf.constant(x), tf.constant(grad), 50)
    np.testing.assert_array_equal(got.numpy().ravel(), [1, 0, 0, 4])
