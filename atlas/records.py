"""Plain records that carry results from the compute stages to the site.

Everything here is NumPy or builtin types, so the renderer never needs
TensorFlow and the store can serialize records without pickling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LayerInfo:
    """A layer that can be visualized: its name, output shape and units."""

    name: str
    class_name: str
    output_shape: tuple[int | None, ...]
    units: int
    kind: str  # "conv" (rank-4 NHWC output) or "dense" (rank-2 output)
    activation: str  # the fused activation's name, "linear" if none
    uses_logits: bool = False  # objective read before a fused softmax/sigmoid


@dataclass(frozen=True)
class Synthesis:
    """Synthesized images of some units of one layer under one preset."""

    preset: str
    units: np.ndarray  # (n,) int unit indices
    images: np.ndarray  # (n, H, W, C) float32, in the model's input range
    start: np.ndarray  # (n,) objective of the start image
    final: np.ndarray  # (n,) objective of the final image
    layer_max: np.ndarray  # (n,) bool: is the unit the layer's most active?
    peak: np.ndarray  # (n,) the final image's largest value over positions
    # (n,) spread of the image around the centre it was optimized from, in
    # 0-255 levels, after a 1-pixel blur: near 0 for a flat or noise image.
    structure: np.ndarray | None = None
    # The view key the images are shown under ("negative", "diversity-1",
    # ...); empty for the preset's own maximizing images.
    view: str = ""

    @property
    def key(self) -> str:
        """The key of these images in UnitRecord.images."""
        return self.view or self.preset


@dataclass(frozen=True)
class Mining:
    """Streaming top-k results for every unit of one layer.

    Rows are units, columns are ranks (best first). Unused slots, when the
    dataset has fewer than k images, hold image index -1 and value -inf.
    """

    values: np.ndarray  # (U, k) float32 activation (max over positions)
    images: np.ndarray  # (U, k) int64 dataset image index
    positions: np.ndarray  # (U, k, 2) int64 (row, col); (0, 0) for dense
    mean: np.ndarray  # (U,) float64 mean of per-image maximum activation
    max: np.ndarray  # (U,) float32 best per-image maximum activation
    active_fraction: np.ndarray  # (U,) fraction of images with max > 0
    count: int  # images seen
    # The k weakest images, weakest first (same layout as the top-k).
    bottom_values: np.ndarray | None = None  # (U, k)
    bottom_images: np.ndarray | None = None  # (U, k)
    bottom_positions: np.ndarray | None = None  # (U, k, 2)
    # Histogram of per-image maximum activation, per unit.
    hist_counts: np.ndarray | None = None  # (U, bins) int64
    hist_edges: np.ndarray | None = None  # (U, bins + 1) float64


@dataclass(frozen=True)
class Box:
    """A receptive-field box in input pixels, half-open, may pass the border."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left


@dataclass(frozen=True)
class TopKExample:
    """One top-k example of a unit: where it is and how strongly it fires."""

    image: int  # dataset index
    value: float
    label: str | None
    source: str  # the file name or array row it came from
    box: Box
    crop: np.ndarray  # (h, w, C) uint8, zero-padded past the border
    # Attribution of the unit on the crop, by method ("deconvnet", "guided"):
    # (h, w) uint8 magnitude, 255 at the crop's strongest pixel.
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)
    # The whole source image, (H, W, C) uint8, for the unit page's "in
    # context" strip; None for dense layers (the box is the whole image)
    # and for bottom-k examples, which the strip does not show.
    context: np.ndarray | None = None
    # The box in the context image's pixels, when that image was shrunk
    # (None: the context image has the source's size, and `box` serves).
    context_box: Box | None = None


@dataclass(frozen=True)
class Histogram:
    """Counts of a unit's per-image maximum activation over the dataset."""

    edges: np.ndarray  # (bins + 1,) float64, increasing
    counts: np.ndarray  # (bins,) int64


@dataclass(frozen=True)
class ClassWeight:
    """A class a unit pushes toward (weight > 0) or away from (< 0)."""

    label: str
    weight: float


@dataclass(frozen=True)
class UnitRecord:
    """Everything the site shows about one unit."""

    index: int
    # View key -> (H, W, C) uint8, in the order pages show them: the build's
    # presets (the progression), then e.g. "negative", "diversity-1".
    images: dict[str, np.ndarray]
    top_k: list[TopKExample]
    quality: dict[str, float | bool | str | None]  # of the main preset's image
    stats: dict[str, float]
    bottom_k: list[TopKExample] = field(default_factory=list)
    histogram: Histogram | None = None
    image_quality: dict[str, dict] = field(default_factory=dict)  # view key ->
    label_counts: dict[str, int] = field(default_factory=dict)  # over top-k
    label: str | None = None  # the class that dominates the top-k, if one does
    promotes: list[ClassWeight] = field(default_factory=list)  # strongest first
    suppresses: list[ClassWeight] = field(default_factory=list)


@dataclass(frozen=True)
class LayerRecord:
    """One layer of the atlas with all its units."""

    info: LayerInfo
    units: list[UnitRecord]
    # The settings the layer was built with, as AtlasRecord.settings holds
    # the global ones, and its [layers.override] keys ("mine.top_k") with
    # their values; empty for records made without a build.
    settings: dict[str, object] = field(default_factory=dict)
    overrides: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class AtlasRecord:
    """The whole atlas, ready to render."""

    title: str
    about_html: str
    model: dict[str, object]
    settings: dict[str, object]
    versions: dict[str, str]
    data: dict[str, object]
    layers: list[LayerRecord]
    all_layers: list[LayerInfo]  # every layer of the model, for the index
    presets: list[str]
    summary: dict[str, object] = field(default_factory=dict)
