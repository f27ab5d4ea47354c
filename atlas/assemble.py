"""Turning computed arrays into the plain records the site renders: top-k
crops cut at their receptive fields, quality figures and statistics."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np

from atlas.data import Dataset
from atlas.receptive import ReceptiveField, crop
from atlas.records import (
    Box,
    LayerInfo,
    LayerRecord,
    Mining,
    Synthesis,
    TopKExample,
    UnitRecord,
)

logger = logging.getLogger(__name__)

# Below this fraction of its best dataset activation, an image is flagged as
# weak in the build summary.
LOW_QUALITY_RATIO = 0.5

# Dataset images kept while cutting crops, to bound memory on large layers.
_IMAGE_CACHE = 512


def layer_record(
    info: LayerInfo,
    mining: Mining,
    syntheses: Sequence[Synthesis],
    field: ReceptiveField | None,
    dataset: Dataset,
) -> LayerRecord:
    """One layer's units with their images, top-k examples and quality."""
    crops = _TopKCropper(dataset, field)
    units = [
        UnitRecord(
            index=u,
            images={s.preset: dataset.to_uint8(s.images[u]) for s in syntheses},
            top_k=crops.examples(mining, u),
            quality=quality(mining, syntheses[0], u),
            stats=stats(mining, u),
        )
        for u in range(info.units)
    ]
    return LayerRecord(info=info, units=units)


def quality(mining: Mining, synthesis: Synthesis, unit: int) -> dict:
    """How well the image drives the unit, against the best real image.

    The ratio compares like with like: the image's largest activation over
    positions against the best per-image maximum of the dataset.
    """
    best = float(mining.max[unit])
    final = float(synthesis.final[unit])
    peak = float(synthesis.peak[unit])
    dead = not best > 0 and not peak > 0
    ratio = peak / best if best > 0 else None
    return {
        "preset": synthesis.preset,
        "start": float(synthesis.start[unit]),
        "final": final,
        "peak": peak,
        "dataset_max": best if math.isfinite(best) else None,
        "ratio": ratio,
        "layer_max": bool(synthesis.layer_max[unit]),
        "dead": dead,
        "low": dead or (ratio is not None and ratio < LOW_QUALITY_RATIO),
    }


def stats(mining: Mining, unit: int) -> dict[str, float]:
    """Dataset statistics of one unit's per-image maximum activation."""
    return {
        "mean": float(mining.mean[unit]),
        "max": float(mining.max[unit]),
        "active_fraction": float(mining.active_fraction[unit]),
        "images": float(mining.count),
    }


class _TopKCropper:
    """Cuts top-k crops, reading each dataset image once per layer."""

    def __init__(self, dataset: Dataset, field: ReceptiveField | None) -> None:
        self.dataset = dataset
        self.field = field
        self.pad = dataset.input_range[0]
        self._images: dict[int, np.ndarray] = {}

    def examples(self, mining: Mining, unit: int) -> list[TopKExample]:
        ranks = [
            r for r in range(mining.images.shape[1]) if mining.images[unit, r] >= 0
        ]
        self._prefetch(int(mining.images[unit, r]) for r in ranks)
        return [self._example(mining, unit, r) for r in ranks]

    def _example(self, mining: Mining, unit: int, rank: int) -> TopKExample:
        index = int(mining.images[unit, rank])
        row, col = (int(v) for v in mining.positions[unit, rank])
        box = self._box(row, col)
        pixels = crop(self._images[index], box, pad_value=self.pad)
        return TopKExample(
            image=index,
            value=float(mining.values[unit, rank]),
            label=self.dataset.labels[index],
            source=self.dataset.sources[index],
            box=box,
            crop=self.dataset.to_uint8(pixels),
        )

    def _box(self, row: int, col: int) -> Box:
        if self.field is None:
            height, width = self.dataset.shape[:2]
            return Box(0, 0, height, width)
        return self.field.box(row, col)

    def _prefetch(self, indices) -> None:
        if len(self._images) > _IMAGE_CACHE:
            self._images.clear()
        missing = sorted({i for i in indices if i not in self._images})
        if missing:
            for index, image in zip(missing, self.dataset.get(missing), strict=True):
                self._images[index] = image
