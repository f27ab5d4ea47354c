"""The pixel parameterization: images held as x = image - mean.

Yosinski et al. (2015) optimize mean-subtracted pixels; `PixelSpace` holds
the model's pixel range and mean, and converts between images and x.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from atlas.errors import ConfigError

# The paper's constants are for pixels spanning 0-255.
PAPER_PIXEL_RANGE = 255.0
# Standard deviation of the start noise, in 0-255 levels: our choice, small
# beside the range so ascent, not the noise, shapes the image.
START_NOISE_STD = 4.0


@dataclass(frozen=True)
class PixelSpace:
    """The model's pixel range [low, high] and the per-channel mean."""

    low: float
    high: float
    mean: tuple[float, ...]

    @property
    def scale(self) -> float:
        """Model pixel units per 0-255 level."""
        return (self.high - self.low) / PAPER_PIXEL_RANGE

    @property
    def mean_array(self) -> np.ndarray:
        return np.asarray(self.mean, np.float32)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The range of x per channel: (low - mean, high - mean)."""
        return self.low - self.mean_array, self.high - self.mean_array

    def to_images(self, x: np.ndarray) -> np.ndarray:
        """Mean-subtracted x -> float32 images clipped to the pixel range."""
        images = np.asarray(x, np.float32) + self.mean_array
        return np.clip(images, self.low, self.high).astype(np.float32)


def pixel_space(
    input_range: tuple[float, float], mean: np.ndarray | None, channels: int
) -> PixelSpace:
    """Validate the range and mean; the mean defaults to the range's midpoint."""
    low, high = (float(bound) for bound in input_range)
    if not low < high:
        raise ConfigError(
            f"input_range must be (low, high) with low < high, got {input_range!r}."
        )
    if mean is None:
        return PixelSpace(low, high, ((low + high) / 2,) * channels)

    values = np.broadcast_to(np.asarray(mean, np.float64), (channels,))
    if np.any(values < low) or np.any(values > high):
        raise ConfigError(
            f"mean must lie in input_range {input_range!r}, got {values.tolist()}."
        )
    return PixelSpace(low, high, tuple(float(value) for value in values))


def start_images(
    units: Sequence[int], canvas: tuple[int, int, int], seed: int, space: PixelSpace
) -> np.ndarray:
    """Start points x, (n, H, W, C): Gaussian noise around the mean.

    Each unit's noise comes from a stateless generator keyed by (seed, unit),
    so it does not depend on which units share the batch.
    """
    std = START_NOISE_STD * space.scale
    noise = [
        tf.random.stateless_normal(canvas, seed=[seed, unit], stddev=std)
        for unit in units
    ]
    low, high = space.bounds()
    return np.clip(np.stack([sample.numpy() for sample in noise]), low, high)
