"""Image parameterizations: how an image is held while it is optimized.

Every parameterization turns its parameters into x = image - centre, the
mean-subtracted pixels the transforms and the model read. `Pixels` holds x
itself (Yosinski et al. 2015); `Fourier` holds a frequency-scaled spectrum
mixed by a colour-decorrelation matrix and squashed into the pixel range
(Olah et al. 2017). Both work for any canvas size and channel count.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from atlas.errors import ConfigError

# The paper's constants are for pixels spanning 0-255.
PAPER_PIXEL_RANGE = 255.0
# Standard deviation of the start noise, in 0-255 levels: our choice, small
# beside the range so ascent, not the noise, shapes the image.
START_NOISE_STD = 4.0
# Standard deviation of each start spectrum coefficient (real and imaginary
# part): with the spectrum normalized to unit pixel RMS, the start image
# varies by about 0.07 logit units, a few 0-255 levels like START_NOISE_STD.
FOURIER_START_STD = 0.05
# The sigmoid's centre is kept this far inside (0, 1) of the range, so a
# dataset whose mean pixel is at the bottom of the range (black) still has a
# finite logit; 0.01 of the range is under 3 of 255 levels.
CENTRE_MARGIN = 0.01
PARAMETERIZATIONS = ("pixels", "fourier")


@dataclass(frozen=True)
class PixelSpace:
    """The model's pixel range [low, high] and the centre x is taken from.

    The centre is per channel (`mean`) or, as Yosinski et al. optimized
    around CaffeNet's mean image, a whole (H, W, C) `image`; `digest`
    stands for the image in comparisons, so equal spaces compile alike.
    """

    low: float
    high: float
    mean: tuple[float, ...]
    image: np.ndarray | None = field(default=None, compare=False, repr=False)
    digest: str = ""

    @property
    def scale(self) -> float:
        """Model pixel units per 0-255 level."""
        return (self.high - self.low) / PAPER_PIXEL_RANGE

    @property
    def mean_array(self) -> np.ndarray:
        """The centre, (C,) or (H, W, C) float32."""
        if self.image is not None:
            return self.image
        return np.asarray(self.mean, np.float32)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The range of x per channel or pixel: (low - centre, high - centre)."""
        return self.low - self.mean_array, self.high - self.mean_array

    def to_images(self, x: np.ndarray) -> np.ndarray:
        """Mean-subtracted x -> float32 images clipped to the pixel range."""
        images = np.asarray(x, np.float32) + self.mean_array
        return np.clip(images, self.low, self.high).astype(np.float32)


@dataclass(frozen=True)
class Pixels:
    """x itself, clipped to the pixel range after every step."""

    space: PixelSpace
    canvas: tuple[int, int, int]  # (H, W, C)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.canvas

    def start(self, keys: Sequence[int], seed: int) -> np.ndarray:
        """Gaussian noise around the centre, one draw per key."""
        std = START_NOISE_STD * self.space.scale
        noise = _draws(keys, seed, self.canvas, std)
        low, high = self.space.bounds()
        return np.clip(noise, low, high)

    def to_x(self, params: tf.Tensor) -> tf.Tensor:
        return params

    def project(self, params: tf.Tensor) -> tf.Tensor:
        low, high = self.space.bounds()
        return tf.clip_by_value(params, low, high)


@dataclass(frozen=True)
class Fourier:
    """A spectrum per channel, scaled by 1 / frequency**decay_power.

    Parameters are (C, H, W // 2 + 1, 2): real and imaginary parts of each
    channel's half spectrum. The inverse FFT gives decorrelated channels in
    logit units; `colour` (C, C) mixes them into the image's channels, and
    a sigmoid centred on the centre pixel squashes them into the range.
    """

    space: PixelSpace
    canvas: tuple[int, int, int]
    colour: tuple[tuple[float, ...], ...]
    decay_power: float = 1.0

    @property
    def shape(self) -> tuple[int, ...]:
        height, width, channels = self.canvas
        return (channels, height, width // 2 + 1, 2)

    def start(self, keys: Sequence[int], seed: int) -> np.ndarray:
        return _draws(keys, seed, self.shape, FOURIER_START_STD)

    def to_x(self, params: tf.Tensor) -> tf.Tensor:
        height, width, _ = self.canvas
        scale = spectrum_scale(height, width, self.decay_power)
        spectrum = tf.complex(params[..., 0] * scale, params[..., 1] * scale)
        planes = tf.signal.irfft2d(spectrum, fft_length=[height, width])
        colour = np.asarray(self.colour, np.float32)
        mixed = tf.einsum("nchw,dc->nhwd", planes, colour)
        return squash(mixed, self.space)

    def project(self, params: tf.Tensor) -> tf.Tensor:
        return params


def pixel_space(
    input_range: tuple[float, float], mean: np.ndarray | None, channels: int
) -> PixelSpace:
    """Validate the range and centre: a (C,) mean pixel or an (H, W, C) mean
    image; with none, the middle of the range."""
    low, high = (float(bound) for bound in input_range)
    if not low < high:
        raise ConfigError(
            f"input_range must be (low, high) with low < high, got {input_range!r}."
        )
    if mean is None:
        return PixelSpace(low, high, ((low + high) / 2,) * channels)

    values = np.asarray(mean, np.float64)
    if values.ndim == 3 and values.shape[-1] == channels:
        return _image_space(low, high, values)
    values = np.broadcast_to(values, (channels,))
    if np.any(values < low) or np.any(values > high):
        raise ConfigError(
            f"mean must lie in input_range {input_range!r}, got {values.tolist()}."
        )
    return PixelSpace(low, high, tuple(float(value) for value in values))


def parameterization(
    kind: str,
    space: PixelSpace,
    canvas: tuple[int, int, int],
    colour: np.ndarray | None = None,
) -> Pixels | Fourier:
    """The parameterization `kind` for `canvas`; `colour` only for Fourier."""
    if kind == "pixels":
        return Pixels(space, canvas)
    if kind == "fourier":
        matrix = np.eye(canvas[-1]) if colour is None else np.asarray(colour)
        rows = tuple(tuple(float(v) for v in row) for row in matrix)
        return Fourier(space, canvas, rows)
    expected = " or ".join(repr(name) for name in PARAMETERIZATIONS)
    raise ConfigError(f"unknown parameterization {kind!r}; expected {expected}.")


def spectrum_scale(height: int, width: int, decay_power: float) -> np.ndarray:
    """(H, W // 2 + 1) float32 weights of the half spectrum's coefficients.

    1 / f**decay_power, with f the frequency in cycles per pixel (the zero
    frequency counts as 1 / max(H, W), the lowest nonzero one), normalized
    so that coefficients of magnitude 1 give pixels of RMS 1 (Parseval:
    columns other than 0 and W / 2 stand for themselves and their mirror).
    """
    rows = np.fft.fftfreq(height)[:, None]
    columns = np.fft.rfftfreq(width)[None, :]
    frequency = np.sqrt(rows**2 + columns**2)
    weights = 1.0 / np.maximum(frequency, 1.0 / max(height, width)) ** decay_power

    mirrored = np.full(columns.shape, 2.0)
    mirrored[0, 0] = 1.0
    if width % 2 == 0:
        mirrored[0, -1] = 1.0
    energy = np.sum(mirrored * weights**2)
    return (weights * height * width / math.sqrt(energy)).astype(np.float32)


def squash(z: tf.Tensor, space: PixelSpace) -> tf.Tensor:
    """Logit-unit values -> x: a sigmoid into the range, 0 at the centre."""
    low, high = space.low, space.high
    centre = (space.mean_array - low) / (high - low)
    centre = np.clip(centre, CENTRE_MARGIN, 1 - CENTRE_MARGIN)
    offset = np.log(centre / (1 - centre)).astype(np.float32)
    image = low + (high - low) * tf.sigmoid(z + offset)
    return image - space.mean_array


def _image_space(low: float, high: float, image: np.ndarray) -> PixelSpace:
    """A space centred on a mean image, clipped into the range."""
    image = np.clip(image, low, high).astype(np.float32)
    channel_mean = tuple(float(v) for v in image.mean(axis=(0, 1)))
    digest = hashlib.sha256(image.tobytes() + str(image.shape).encode())
    return PixelSpace(low, high, channel_mean, image, digest.hexdigest()[:16])


def _draws(
    keys: Sequence[int], seed: int, shape: tuple[int, ...], std: float
) -> np.ndarray:
    """One Gaussian draw of `shape` per key, keyed by (seed, key) alone, so a
    sample's start never depends on which others share its batch."""
    noise = [
        tf.random.stateless_normal(shape, seed=[seed, int(key)], stddev=std)
        for key in keys
    ]
    return np.stack([sample.numpy() for sample in noise]).astype(np.float32)
