"""Yosinski et al. (2015) image regularizers, each a pure function on a batch.

Every function takes mean-subtracted images `x` of shape (N, H, W, C), any C,
and treats each sample on its own, so no image depends on its batch neighbours.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

# Kernel radius in units of sigma, ceil(3σ): past 3σ a Gaussian keeps < 0.3 %
# of its mass. (scipy.ndimage truncates at 4σ by default.)
BLUR_RADIUS_SIGMAS = 3.0


def decay(x: tf.Tensor, rate: float) -> tf.Tensor:
    """L2 decay: pull every pixel toward the mean, x <- (1 - rate) x."""
    return x * (1.0 - rate)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A 1-D Gaussian of radius ceil(3 sigma), normalized to sum 1, float32."""
    radius = math.ceil(BLUR_RADIUS_SIGMAS * sigma)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / weights.sum()).astype(np.float32)


def blur(x: tf.Tensor, sigma: float) -> tf.Tensor:
    """Gaussian blur of each channel with output the size of the input.

    Separable: a depthwise column pass, then a row pass. Borders are mirrored
    with the edge pixel repeated (d c b a | a b c d), which is scipy.ndimage's
    mode "reflect", so the blur keeps the mean of a flat image exactly.
    """
    kernel = gaussian_kernel(sigma)
    radius = len(kernel) // 2
    channels = int(x.shape[-1])
    column = np.tile(kernel[:, None, None, None], (1, 1, channels, 1))
    row = column.reshape(1, len(kernel), channels, 1)

    x = _mirror_pad(_mirror_pad(x, radius, axis=1), radius, axis=2)
    x = tf.nn.depthwise_conv2d(x, column, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(x, row, [1, 1, 1, 1], "VALID")


def percentile(values: tf.Tensor, q: float) -> tf.Tensor:
    """The q-th percentile of each row of (N, P) values, shape (N,).

    Linear interpolation between the sorted values at ranks floor(r) and
    floor(r) + 1 with r = q / 100 * (P - 1): numpy.percentile's default
    ("linear") method.
    """
    count = int(values.shape[-1])
    rank = q / 100.0 * (count - 1)
    low = math.floor(rank)
    high = min(low + 1, count - 1)
    ordered = tf.sort(values, axis=-1)

    below = ordered[:, low]
    return below + (rank - low) * (ordered[:, high] - below)


def clip_small_norm(x: tf.Tensor, q: float) -> tf.Tensor:
    """Set to 0 (the mean) each pixel whose channel L2 norm is below the
    sample's q-th percentile of pixel norms."""
    norms = tf.sqrt(tf.reduce_sum(tf.square(x), axis=-1))
    return x * _keep_mask(norms, q)


def clip_small_contribution(x: tf.Tensor, grad: tf.Tensor, q: float) -> tf.Tensor:
    """Set to 0 each pixel whose contribution is below the sample's q-th
    percentile of contributions.

    The contribution of a pixel is |sum over channels of x * grad|: to first
    order, how much the objective would change if the pixel were set to 0.
    """
    contribution = tf.abs(tf.reduce_sum(x * grad, axis=-1))
    return x * _keep_mask(contribution, q)


def _keep_mask(values: tf.Tensor, q: float) -> tf.Tensor:
    """(N, H, W) pixel values -> (N, H, W, 1) float mask, 1 where the value is
    at least the sample's q-th percentile (strictly smaller ones are cut)."""
    pixels = math.prod(int(size) for size in values.shape[1:])
    flat = tf.reshape(values, (-1, pixels))
    threshold = percentile(flat, q)[:, None, None]
    return tf.cast(values >= threshold, values.dtype)[..., None]


def _mirror_pad(x: tf.Tensor, radius: int, axis: int) -> tf.Tensor:
    """Mirror-pad `axis` by `radius` on both sides, repeating the edge pixel.

    tf.pad's SYMMETRIC mode pads at most the axis length at once; padding the
    padded tensor again continues the same mirrored pattern, so small images
    (narrower than the kernel) blur like large ones.
    """
    left = radius
    while left > 0:
        size = int(x.shape[axis])
        pad = min(left, size)
        paddings = [[0, 0]] * 4
        paddings[axis] = [pad, pad]
        x = tf.pad(x, paddings, mode="SYMMETRIC")
        left -= pad
    return x
