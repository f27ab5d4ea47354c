"""Parameterizations, colour decorrelation and data statistics against
hand-computed values: any canvas size, any channel count."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from atlas.errors import ConfigError
from atlas.visualize.colour import IMAGENET_COVARIANCE, decorrelation_matrix
from atlas.visualize.params import (
    Fourier,
    parameterization,
    pixel_space,
    spectrum_scale,
    squash,
)
from atlas.visualize.statistics import pixel_statistics


def test_pixel_space_bounds_follow_a_mean_image():
    image = np.array([[[0.25]], [[0.75]]], np.float32)  # (2, 1, 1)
    space = pixel_space((0.0, 1.0), image, channels=1)
    low, high = space.bounds()
    np.testing.assert_allclose(low, -image)
    np.testing.assert_allclose(high, 1 - image)
    assert space.mean == (0.5,) and space.digest


def test_pixel_space_rejects_a_mean_outside_the_range():
    with pytest.raises(ConfigError, match=r"mean must lie in input_range"):
        pixel_space((0.0, 1.0), np.array([2.0]), channels=1)


@pytest.mark.parametrize("height, width", [(4, 6), (5, 7), (1, 3)])
def test_spectrum_scale_is_one_over_frequency_with_unit_pixel_rms(height, width):
    scale = spectrum_scale(height, width, 1.0)
    rows = np.fft.fftfreq(height)[:, None]
    columns = np.fft.rfftfreq(width)[None, :]
    frequency = np.maximum(np.hypot(rows, columns), 1 / max(height, width))
    ratio = scale * frequency
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)
    # Coefficients of magnitude 1 with random phases: pixel RMS about 1.
    rng = np.random.default_rng(0)
    phases = np.exp(2j * np.pi * rng.random((2000, *scale.shape)))
    planes = np.fft.irfft2(phases * scale, s=(height, width))
    assert 0.8 < np.sqrt(np.mean(planes**2)) < 1.2


def test_fourier_single_coefficient_renders_a_cosine_on_an_odd_canvas():
    height, width = 5, 7
    space = pixel_space((0.0, 1.0), np.array([0.5]), channels=1)
    param = parameterization("fourier", space, (height, width, 1))
    params = np.zeros((1, *param.shape), np.float32)
    params[0, 0, 0, 1, 0] = 0.5  # real part of frequency (0, 1/7)
    x = param.to_x(tf.constant(params)).numpy()[0, :, :, 0]

    weight = spectrum_scale(height, width, 1.0)[0, 1]
    z = 2 * 0.5 * weight / (height * width) * np.cos(2 * np.pi * np.arange(width) / 7)
    want = 1 / (1 + np.exp(-z)) - 0.5  # sigmoid around a centre of 0.5
    np.testing.assert_allclose(x, np.tile(want, (height, 1)), atol=1e-6)


def test_squash_keeps_the_centre_at_zero_and_the_range():
    space = pixel_space((-1.0, 1.0), np.array([0.2, -0.4]), channels=2)
    zero = squash(tf.zeros((1, 2, 2, 2)), space).numpy()
    np.testing.assert_allclose(zero, 0.0, atol=1e-6)
    big = squash(tf.fill((1, 2, 2, 2), 50.0), space).numpy() + space.mean_array
    np.testing.assert_allclose(big, 1.0, atol=1e-5)


def test_fourier_mixes_channels_by_the_colour_matrix():
    space = pixel_space((0.0, 1.0), np.array([0.5, 0.5]), channels=2)
    colour = np.array([[1.0, 0.0], [0.5, 0.0]])
    param = parameterization("fourier", space, (3, 4, 2), colour)
    params = np.random.default_rng(1).normal(size=(2, *param.shape))
    x = param.to_x(tf.constant(params, tf.float32)).numpy()
    logits = np.log((x + 0.5) / (0.5 - x))  # undo the sigmoid
    np.testing.assert_allclose(logits[..., 1], 0.5 * logits[..., 0], atol=1e-4)


def test_decorrelation_matrix_is_the_normalized_square_root():
    covariance = np.diag([4.0, 1.0, 0.25])
    matrix = decorrelation_matrix(covariance, 3)
    np.testing.assert_allclose(matrix @ matrix.T, covariance / 4.0, atol=1e-6)
    assert np.linalg.norm(matrix, axis=0).max() == pytest.approx(1.0)


def test_decorrelation_matrix_falls_back_by_channel_count():
    rgb = decorrelation_matrix(None, 3)
    np.testing.assert_allclose(
        rgb @ rgb.T,
        IMAGENET_COVARIANCE / np.linalg.eigvalsh(IMAGENET_COVARIANCE)[-1],
        atol=1e-5,
    )
    np.testing.assert_array_equal(decorrelation_matrix(None, 4), np.eye(4))
    np.testing.assert_array_equal(decorrelation_matrix(np.array([[0.3]]), 1), [[1]])


def test_decorrelation_matrix_rejects_a_wrong_shape():
    with pytest.raises(ConfigError, match=r"\(2, 2\) matrix for a 2-channel"):
        decorrelation_matrix(np.eye(3), 2)


def test_pixel_statistics_equal_numpy_and_resize_to_the_canvas():
    images = np.random.default_rng(2).uniform(0, 255, (6, 4, 4, 2))
    stats = pixel_statistics([images[:4], images[4:]], (0.0, 255.0), (4, 4, 2))
    np.testing.assert_allclose(stats.mean_image, images.mean(axis=0), rtol=1e-5)
    flat = images.reshape(-1, 2) / 255.0
    np.testing.assert_allclose(stats.covariance, np.cov(flat.T, bias=True), atol=1e-9)
    small = pixel_statistics([np.ones((2, 4, 4, 2))], (0.0, 1.0), (3, 5, 2))
    assert small.mean_image.shape == (3, 5, 2)
    np.testing.assert_allclose(small.mean_image, 1.0, atol=1e-6)


def test_start_draws_depend_on_the_key_alone():
    space = pixel_space((0.0, 1.0), None, channels=3)
    param = parameterization("fourier", space, (6, 5, 3))
    assert isinstance(param, Fourier) and param.shape == (3, 6, 3, 2)
    together = param.start([4, 9], seed=3)
    alone = param.start([9], seed=3)
    np.testing.assert_array_equal(together[1], alone[0])
    assert not np.array_equal(param.start([9], seed=4), alone)
