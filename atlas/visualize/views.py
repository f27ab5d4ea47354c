"""Views: the images made of one unit under one preset, and chunk sizes.

Besides the image that maximizes a unit, a preset can make the image that
most inhibits it ("negative") and several maximizing images pushed apart
from each other ("diversity-1", ...). All views of a chunk of units run in
one batch, laid out view by view, each sample keyed by its unit and view.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from atlas.errors import ConfigError

NEGATIVE = "negative"
DIVERSITY = "diversity"
# A sample's random key is unit + view * VIEW_STRIDE: units stay below it,
# and (views + 1) * VIEW_STRIDE stays inside the 32 bits the hash reads.
VIEW_STRIDE = 1 << 24
MAX_DIVERSITY = 64
# Bytes an ascent step holds per activation value of the layer model: the
# float32 forward value kept for the backward pass, its gradient, and about
# as much again in temporaries (measured peak RSS on MobileNetV2 is within
# this bound).
BYTES_PER_ACTIVATION = 3 * 4


@dataclass(frozen=True)
class ViewSet:
    """Which views one ascent makes per unit: always the maximizing image,
    then the negative one if asked, then `diversity` diverse ones."""

    negative: bool = False
    diversity: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.diversity <= MAX_DIVERSITY or self.diversity == 1:
            raise ConfigError(
                f"diversity must be 0 (off) or 2 to {MAX_DIVERSITY} images per "
                f"unit, got {self.diversity!r}. Fix visualize.diversity."
            )

    @property
    def per_unit(self) -> int:
        """Samples per unit in the batch."""
        return 1 + int(self.negative) + self.diversity

    @property
    def first_diverse(self) -> int:
        """The view index of the first diversity image."""
        return 1 + int(self.negative)

    def names(self, preset: str) -> list[str]:
        """View keys in page order: the preset's own name first."""
        names = [preset] + ([NEGATIVE] if self.negative else [])
        return names + [f"{DIVERSITY}-{i}" for i in range(1, self.diversity + 1)]

    def layout(self, units: np.ndarray) -> tuple[np.ndarray, ...]:
        """(units, keys, signs) of every sample of a chunk, view by view."""
        views = np.repeat(np.arange(self.per_unit), len(units))
        tiled = np.tile(units, self.per_unit).astype(np.int32)
        keys = (tiled + views * VIEW_STRIDE).astype(np.int64)
        signs = np.where(self.negative & (views == 1), -1.0, 1.0)
        return tiled, keys, signs.astype(np.float32)


def chunk_size(
    layer_model: keras.Model,
    canvas: tuple[int, int, int],
    samples_per_unit: int,
    memory_mb: float,
    limit: int,
) -> int:
    """Units per chunk: as many as `memory_mb` holds, at least 1, at most
    `limit`. An estimate from the layer model's activation sizes."""
    if memory_mb <= 0:
        raise ConfigError(
            f"memory budget must be > 0 MB, got {memory_mb!r}. Fix visualize.memory_mb."
        )
    per_sample = activation_values(layer_model, canvas) * BYTES_PER_ACTIVATION
    fits = int(memory_mb * 2**20 // (per_sample * samples_per_unit))
    return max(1, min(int(limit), fits))


def activation_values(layer_model: keras.Model, canvas: Sequence[int]) -> int:
    """Values one sample's forward pass produces over every layer output;
    unknown sizes (a model of any input size) count as the canvas's."""
    total = 0
    for layer in layer_model.layers:
        outputs = layer.output if isinstance(layer.output, list) else [layer.output]
        for output in outputs:
            total += _values(tuple(output.shape[1:]), canvas)
    return max(total, 1)


def _values(shape: tuple, canvas: Sequence[int]) -> int:
    sizes = [
        canvas[i] if size is None and i < 2 else (size or 1)
        for i, size in enumerate(shape)
    ]
    return math.prod(sizes)
