"""Turning computed arrays into the plain records the site renders: top-k
and bottom-k crops cut at their receptive fields with their heatmaps,
labels, histograms, quality figures and statistics."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

from atlas.data import Dataset
from atlas.explain import place_heatmap
from atlas.labels import (
    class_names,
    class_weights,
    dataset_shares,
    dominant_label,
    label_counts,
)
from atlas.receptive import ReceptiveField, crop
from atlas.records import (
    Box,
    Histogram,
    LayerInfo,
    LayerRecord,
    Mining,
    Synthesis,
    TopKExample,
    UnitRecord,
)
from atlas.site.context import CONTEXT_CELL
from atlas.visualize.views import NEGATIVE

logger = logging.getLogger(__name__)

# Below this fraction of its best dataset activation, an image is flagged as
# weak in the build summary.
LOW_QUALITY_RATIO = 0.5
# An image whose blurred spread around its centre is under this many 0-255
# levels shows no structure: ascent left it flat, or only the start noise
# remains (the noise, 4 levels, measures about 1.1 after the blur), while
# the faintest shapes on the digits example measure 10 or more.
NO_STRUCTURE_LEVELS = 2.0

# Dataset images kept while cutting crops, to bound memory on large layers.
_IMAGE_CACHE = 512


def layer_record(
    info: LayerInfo,
    mining: Mining,
    syntheses: Sequence[Synthesis],
    field: ReceptiveField | None,
    dataset: Dataset,
    main: str | None = None,
    evidence: Evidence | None = None,
) -> LayerRecord:
    """One layer's units with their images, top-k and bottom-k examples,
    labels and quality.

    `syntheses` are the views in page order; `main` names the preset whose
    quality is the unit's (default: the first view's).
    """
    crops = _Cropper(dataset, field)
    evidence = evidence or Evidence()
    labels = _LabelContext(dataset, evidence.influence)
    lead = next((s for s in syntheses if s.key == main), syntheses[0])
    units = []
    for u in range(info.units):
        top_k = crops.examples(mining, "top", u, evidence.heatmaps)
        units.append(
            UnitRecord(
                index=u,
                images={s.key: dataset.to_uint8(s.images[u]) for s in syntheses},
                top_k=top_k,
                quality=quality(mining, lead, u),
                stats=stats(mining, u),
                bottom_k=crops.examples(mining, "bottom", u, evidence.heatmaps),
                histogram=histogram(mining, u),
                image_quality={s.key: quality(mining, s, u) for s in syntheses},
                **labels.of_unit(u, top_k),
            )
        )
    return LayerRecord(info=info, units=units)


@dataclasses.dataclass(frozen=True)
class Evidence:
    """What the dataset says about a layer beyond its mining: heatmaps by
    `atlas.explain.heatmap_key`, and (units, classes) influence."""

    heatmaps: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    influence: np.ndarray | None = None


def quality(mining: Mining, synthesis: Synthesis, unit: int) -> dict:
    """How well one view's image drives the unit, against the real images.

    The ratio compares like with like: the image's largest activation over
    positions against the best per-image maximum of the dataset (for a
    negative view, which drives the unit down, there is none). The dataset's
    best and weakest per-image maxima belong to the unit, not the view, so
    every view carries both where mining kept them. `layer_max`
    is the paper's check that the unit is the most active of its layer on
    the image; `no_structure` flags an image that stayed flat or noise.
    """
    best = float(mining.max[unit])
    peak = float(synthesis.peak[unit])
    # Dead: no response at all. A linear unit (a logit) that stays below 0
    # still varies over the data, and is not dead.
    lowest = _dataset_min(mining, unit)
    constant = lowest is None or lowest >= best
    dead = not best > 0 and not peak > 0 and constant
    negative = synthesis.key == NEGATIVE
    ratio = peak / best if best > 0 and not negative else None
    spread = _structure(synthesis, unit)
    flat = spread is not None and spread < NO_STRUCTURE_LEVELS
    weak = ratio is not None and ratio < LOW_QUALITY_RATIO
    return {
        "preset": synthesis.preset,
        "view": synthesis.key,
        "start": float(synthesis.start[unit]),
        "final": float(synthesis.final[unit]),
        "peak": peak,
        "dataset_max": best if math.isfinite(best) else None,
        "dataset_min": lowest,
        "ratio": ratio,
        "layer_max": bool(synthesis.layer_max[unit]),
        "dead": dead,
        "structure": spread,
        "no_structure": flat,
        "low": dead or flat or weak,
    }


def _structure(synthesis: Synthesis, unit: int) -> float | None:
    if synthesis.structure is None:
        return None
    return float(synthesis.structure[unit])


def _dataset_min(mining: Mining, unit: int) -> float | None:
    """The weakest per-image maximum of the dataset, where mining kept it."""
    if mining.bottom_values is None:
        return None
    value = float(mining.bottom_values[unit, 0])
    return value if math.isfinite(value) else None


def stats(mining: Mining, unit: int) -> dict[str, float | int]:
    """Dataset statistics of one unit's per-image maximum activation; "min"
    is the weakest image's, when mining kept the bottom-k. A unit whose
    active fraction is 0 is dead on the dataset."""
    found = {
        "mean": float(mining.mean[unit]),
        "max": float(mining.max[unit]),
        "active_fraction": float(mining.active_fraction[unit]),
        "images": int(mining.count),
    }
    lowest = _dataset_min(mining, unit)
    if lowest is not None:
        found["min"] = lowest
    return found


def histogram(mining: Mining, unit: int) -> Histogram | None:
    """The unit's histogram of per-image maximum activation, if mined."""
    if mining.hist_counts is None or mining.hist_edges is None:
        return None
    return Histogram(
        edges=np.asarray(mining.hist_edges[unit], np.float64),
        counts=np.asarray(mining.hist_counts[unit], np.int64),
    )


class _LabelContext:
    """Label counts, dominant label and class influence of a layer's units."""

    def __init__(self, dataset: Dataset, influence: np.ndarray | None) -> None:
        self.shares = dataset_shares(dataset.labels)
        self.influence = influence
        self.names = None
        if influence is not None:
            self.names = class_names(dataset.class_names, influence.shape[1])

    def of_unit(self, unit: int, top_k: list[TopKExample]) -> dict:
        counts = label_counts([example.label for example in top_k])
        found = {
            "label_counts": counts,
            "label": dominant_label(counts, self.shares),
        }
        if self.influence is not None:
            promotes, suppresses = class_weights(self.influence[unit], self.names)
            found.update(promotes=promotes, suppresses=suppresses)
        return found


class _Cropper:
    """Cuts top-k and bottom-k crops, reading each dataset image once per
    layer while it stays in a bounded cache."""

    def __init__(self, dataset: Dataset, field: ReceptiveField | None) -> None:
        self.dataset = dataset
        self.field = field
        self.pad = dataset.input_range[0]
        self._images: dict[int, np.ndarray] = {}
        self._wholes: dict[int, np.ndarray] = {}

    def examples(
        self, mining: Mining, kind: str, unit: int, heatmaps: dict[str, np.ndarray]
    ) -> list[TopKExample]:
        """The unit's filled top-k ("top") or bottom-k ("bottom") slots."""
        values, images, positions = _ranked(mining, kind)
        if images is None:
            return []
        ranks = [r for r in range(images.shape[1]) if images[unit, r] >= 0]
        self._prefetch(int(images[unit, r]) for r in ranks)
        maps = _heatmaps_of(heatmaps, kind)
        in_context = kind == "top" and self.field is not None
        return [
            self._example(
                (values[unit, r], images[unit, r], positions[unit, r]),
                {m: array[unit, r] for m, array in maps.items()},
                in_context,
            )
            for r in ranks
        ]

    def _example(
        self, slot, maps: dict[str, np.ndarray], in_context: bool
    ) -> TopKExample:
        value, index, (row, col) = slot
        index = int(index)
        box = self._box(int(row), int(col))
        pixels = crop(self._images[index], box, pad_value=self.pad)
        hw = self.dataset.shape[:2]
        return TopKExample(
            image=index,
            value=float(value),
            label=self.dataset.labels[index],
            source=self.dataset.sources[index],
            box=box,
            crop=self.dataset.to_uint8(pixels),
            heatmaps={m: place_heatmap(a, box, hw) for m, a in maps.items()},
            **(self._context(index, box) if in_context else {}),
        )

    def _context(self, index: int, box: Box) -> dict[str, object]:
        """The whole image for the "in context" strip, shrunk once to the
        strip's cell size and shared by every example of the layer that
        shows it, with the box in its pixels: memory stays at a thumbnail
        per distinct top-k image, whatever the input size."""
        if index not in self._wholes:
            whole = self.dataset.to_uint8(self._images[index])
            self._wholes[index] = shrunk(whole, CONTEXT_CELL)
        whole = self._wholes[index]
        scaled = scaled_box(box, self.dataset.shape[:2], whole.shape[:2])
        return {"context": whole, "context_box": scaled}

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


def _ranked(mining: Mining, kind: str):
    if kind == "top":
        return mining.values, mining.images, mining.positions
    return mining.bottom_values, mining.bottom_images, mining.bottom_positions


def _heatmaps_of(heatmaps: dict[str, np.ndarray], kind: str) -> dict[str, np.ndarray]:
    """{method: (units, k, h, w)} of one kind, from `atlas.explain`'s keys."""
    suffix = f"_{kind}"
    return {
        key.removesuffix(suffix): array
        for key, array in heatmaps.items()
        if key.endswith(suffix)
    }


def shrunk(image: np.ndarray, limit: int) -> np.ndarray:
    """`image` (H, W, C) uint8 shrunk smoothly to `limit` pixels on its
    longer side; as it is when no larger."""
    height, width = image.shape[:2]
    if max(height, width) <= limit:
        return image
    ratio = limit / max(height, width)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    planes = [
        np.asarray(Image.fromarray(image[..., c]).resize(size, Image.LANCZOS))
        for c in range(image.shape[2])
    ]
    return np.stack(planes, axis=-1)


def scaled_box(box: Box, source: tuple[int, int], target: tuple[int, int]) -> Box:
    """`box` of a `source`-sized image in the pixels of the same image at
    `target` size, grown outward to whole pixels."""
    if tuple(source) == tuple(target):
        return box
    rows, cols = target[0] / source[0], target[1] / source[1]
    return Box(
        math.floor(box.top * rows),
        math.floor(box.left * cols),
        math.ceil(box.bottom * rows),
        math.ceil(box.right * cols),
    )
