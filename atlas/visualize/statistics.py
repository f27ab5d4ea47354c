"""What ascent needs to know about the data: the mean image it optimizes
around and the colour covariance it decorrelates by, from one pass over a
sample of the dataset."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from atlas.errors import DataError


@dataclass(frozen=True)
class PixelStatistics:
    """The data's mean image (at the canvas size) and colour covariance."""

    mean_image: np.ndarray = field(repr=False)  # (H, W, C), model range
    covariance: np.ndarray = field(repr=False)  # (C, C), in range units

    @property
    def digest(self) -> str:
        """A short hash of both arrays, for cache keys."""
        digest = hashlib.sha256()
        for array in (self.mean_image, self.covariance):
            rounded = np.round(np.asarray(array, np.float64), 6)
            digest.update(np.ascontiguousarray(rounded).tobytes())
        return digest.hexdigest()[:16]


def pixel_statistics(
    batches: Iterable[np.ndarray],
    input_range: tuple[float, float],
    canvas: tuple[int, int, int],
) -> PixelStatistics:
    """Mean image and colour covariance of (N, H, W, C) batches.

    The covariance is of pixel values divided by the range's width, so it
    is the same for [0, 1] and [0, 255] models. The mean image is resized
    (bilinear) to the canvas when the canvas is not the data's size.
    """
    low, high = input_range
    count, image_sum, colour_sum, outer = 0, 0.0, 0.0, 0.0
    for batch in batches:
        values = np.asarray(batch, np.float64)
        image_sum = image_sum + values.sum(axis=0)
        count += len(values)
        pixels = ((values - low) / (high - low)).reshape(-1, values.shape[-1])
        colour_sum = colour_sum + pixels.sum(axis=0)
        outer = outer + pixels.T @ pixels
    if not count:
        raise DataError("no images to take the mean image and colours from.")
    pixels_seen = count * image_sum.shape[0] * image_sum.shape[1]
    colour_mean = colour_sum / pixels_seen
    covariance = outer / pixels_seen - np.outer(colour_mean, colour_mean)
    mean_image = _resized(image_sum / count, canvas)
    return PixelStatistics(np.clip(mean_image, low, high), covariance)


def _resized(image: np.ndarray, canvas: tuple[int, int, int]) -> np.ndarray:
    """The (H, W, C) image at the canvas's height and width, float32."""
    height, width = canvas[:2]
    if image.shape[:2] == (height, width):
        return image.astype(np.float32)
    resized = tf.image.resize(image[None].astype(np.float32), (height, width))
    return resized.numpy()[0]
