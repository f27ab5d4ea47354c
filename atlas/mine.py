"""Streaming mining: one pass over the dataset serves every layer.

For each unit, an image counts once, at its strongest spatial position
(its per-image maximum). One compiled step reduces each batch, for every
layer, to per-image maxima (atlas.maxima); another merges them, every few
hundred images, into every unit's running top-k and bottom-k, statistics and
histogram, on the device. Memory is O(layers x units x (k + bins)) whatever
the size of the dataset, and only the images cross from the host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from atlas.data import scale_pixels
from atlas.errors import DataError
from atlas.histogram import StreamingHistogram
from atlas.maxima import maxima
from atlas.records import LayerInfo, Mining

logger = logging.getLogger(__name__)

# Bins of each unit's histogram of per-image maxima.
HISTOGRAM_BINS = 32

# Images reduced before they are merged into the running state: merging 512
# at once cost 60 us per image for 2,000 units, each batch of 64 alone 127
# (measured on two CPU cores).
MERGE_IMAGES = 512

# The last miner, so that mining again with one extractor traces once.
_LAST: dict[str, object] = {}


def mine(
    extractor: keras.Model,
    infos: Sequence[LayerInfo],
    batches: Iterable[np.ndarray | tf.Tensor],
    k: int = 9,
    progress: Callable[[int], None] | None = None,
    bins: int = HISTOGRAM_BINS,
    input_range: tuple[float, float] = (0.0, 1.0),
) -> dict[str, Mining]:
    """Top-k and bottom-k images per unit of every layer, in one pass.

    `extractor` returns one output per info, in order. Images are numbered
    by their order in `batches`; equal values rank the lower index first.
    uint8 batches are scaled to `input_range` in the compiled step, as
    `Dataset.get` would; float batches are used as they are.
    """
    if k < 1:
        raise DataError(f"mine.top_k must be at least 1, got {k}.")
    units = [info.units for info in infos]
    miner = _miner(extractor, units, k, bins, tuple(input_range))
    for batch in batches:
        if not isinstance(batch, tf.Tensor) or batch.dtype != tf.uint8:
            batch = tf.convert_to_tensor(batch, tf.float32)
        miner.step(batch)
        if progress is not None:
            progress(int(batch.shape[0]))
    miner.flush()
    if int(miner.count.numpy()) == 0:
        raise DataError("the dataset yielded no images to mine.")
    return {info.name: miner.result(i) for i, info in enumerate(infos)}


class _Ranking:
    """The k best (value, image, flat position) per unit, best first."""

    def __init__(self, units: int, k: int) -> None:
        self.k = k
        self.values = _variable(tf.fill([units, k], -np.inf))
        self.images = _variable(tf.fill([units, k], tf.constant(-1, tf.int64)))
        self.positions = _variable(tf.zeros([units, k], tf.int32))

    def variables(self) -> list[tf.Variable]:
        return [self.values, self.images, self.positions]

    def threshold(self) -> tf.Tensor:
        """The k-th kept value per unit; -inf while fewer than k are kept."""
        full = self.images[:, -1] >= 0
        return tf.where(full, self.values[:, -1], -np.inf)

    def merge(self, values, images, positions) -> None:
        """Fold in (U, N) candidates whose image indices follow the kept ones.

        `top_k` puts the lower index first among equal values; the kept
        entries precede the batch in the pool and are ordered by image among
        equal values, so ties always go to the lower image index.
        """
        pool = tf.concat([self.values, values], axis=1)
        best = tf.math.top_k(pool, k=self.k, sorted=True).indices
        pool_images = tf.concat([self.images, images], axis=1)
        pool_positions = tf.concat([self.positions, positions], axis=1)
        self.values.assign(tf.gather(pool, best, batch_dims=1))
        self.images.assign(tf.gather(pool_images, best, batch_dims=1))
        self.positions.assign(tf.gather(pool_positions, best, batch_dims=1))

    def result(self, sign: float, width: int, rows: slice):
        """(values, images, positions (U, k, 2)) of the units in `rows`."""
        images = self.images.numpy()[rows]
        values = np.where(images < 0, -np.inf, self.values.numpy()[rows] * sign)
        flat = self.positions.numpy()[rows].astype(np.int64)
        positions = np.stack([flat // width, flat % width], axis=-1)
        return values.astype(np.float32), images, positions


class _UnitState:
    """Running top-k, bottom-k, statistics and histogram of every unit."""

    def __init__(self, units: int, k: int, bins: int) -> None:
        self.top = _Ranking(units, k)
        self.bottom = _Ranking(units, k)  # ranks negated values
        self.histogram = StreamingHistogram(units, bins)
        self.total = _variable(tf.zeros([units], tf.float64))
        self.best = _variable(tf.fill([units], -np.inf))
        self.active = _variable(tf.zeros([units], tf.int64))

    def variables(self) -> list[tf.Variable]:
        stats = [self.total, self.best, self.active]
        ranked = self.top.variables() + self.bottom.variables()
        return ranked + self.histogram.variables() + stats

    def update(self, values: tf.Tensor, where: tf.Tensor, indices) -> None:
        """Fold in (N, U) per-image maxima at flat positions `where`."""
        finite = tf.math.is_finite(values)
        # Sums of up to MERGE_IMAGES values in float32, accumulated in float64.
        partial = tf.reduce_sum(tf.where(finite, values, tf.zeros_like(values)), 0)
        self.total.assign_add(tf.cast(partial, tf.float64))
        self.best.assign(tf.maximum(self.best, tf.reduce_max(values, 0)))
        active = tf.reduce_sum(tf.cast(values > 0, tf.int32), 0)
        self.active.assign_add(tf.cast(active, tf.int64))
        self.histogram.update(values, finite)
        by_unit, where = tf.transpose(values), tf.transpose(where)
        images = tf.broadcast_to(indices[None, :], tf.shape(by_unit, tf.int64))
        self.top.merge(by_unit, images, where)
        # Non-finite maxima never enter the bottom-k: they rank last there.
        weakest = tf.where(tf.transpose(finite), -by_unit, -np.inf)
        self.bottom.merge(weakest, images, where)

    def result(self, count: int, width: int, rows: slice) -> Mining:
        values, images, positions = self.top.result(1.0, width, rows)
        low = self.bottom.result(-1.0, width, rows)
        counts, edges = self.histogram.result()
        seen = max(count, 1)
        return Mining(
            values=values,
            images=images,
            positions=positions,
            mean=self.total.numpy()[rows] / seen,
            max=self.best.numpy()[rows],
            active_fraction=self.active.numpy()[rows] / seen,
            count=count,
            bottom_values=np.where(low[1] < 0, np.inf, low[0]).astype(np.float32),
            bottom_images=low[1],
            bottom_positions=low[2],
            hist_counts=counts[rows],
            hist_edges=edges[rows],
        )


class _Miner:
    """The state of every unit of every layer, side by side, and the two
    compiled functions that update it: a reduction of each batch to per-image
    maxima, and a merge of several reduced batches at once."""

    def __init__(self, extractor: keras.Model, units: list[int], k, bins, scale):
        self.extractor = extractor
        self.input_range = scale
        self.offsets = np.cumsum([0, *units])
        total = int(self.offsets[-1])
        self.state = _UnitState(total, k, bins)
        self.count = _variable(tf.constant(0, tf.int64))
        # Values a new image must beat (top) or undercut (bottom) to enter,
        # as of the last merge: only such pairs need their position.
        self.floor = _variable(tf.fill([total], -np.inf))
        self.ceiling = _variable(tf.fill([total], np.inf))
        self._merged = 0
        self.widths = np.ones(len(units), np.int64)
        self._pending: list[tuple[tf.Tensor, tf.Tensor]] = []
        self._reduce: dict[tf.DType, Callable] = {}
        unit_spec = tf.TensorSpec((None, int(self.offsets[-1])))
        self._merge = tf.function(
            self._update,
            input_signature=[unit_spec, tf.TensorSpec(unit_spec.shape, tf.int32)],
            autograph=False,
        )
        self._initial = [v.numpy() for v in self._variables()]

    def step(self, images: tf.Tensor) -> None:
        """Reduce one batch; merge once enough batches are waiting."""
        if images.dtype not in self._reduce:
            spec = tf.TensorSpec((None, *images.shape[1:]), images.dtype)
            self._reduce[images.dtype] = tf.function(
                self._maxima, input_signature=[spec], autograph=False
            )
        values, where, widths = self._reduce[images.dtype](images)
        self._pending.append((values, where))
        # Merges at 1, 2, 4, 8 batches' worth, then every MERGE_IMAGES:
        # the floor and ceiling tighten early, when they prune the most.
        waiting = sum(len(v) for v, _ in self._pending)
        if waiting >= min(MERGE_IMAGES, max(self._merged, 1)):
            self.flush()
        self.widths = widths

    def flush(self) -> None:
        """Merge every reduced batch not merged yet."""
        if not self._pending:
            return
        values = tf.concat([v for v, _ in self._pending], axis=0)
        where = tf.concat([w for _, w in self._pending], axis=0)
        self._pending.clear()
        self._merge(values, where)
        self._merged += len(values)

    def result(self, layer: int) -> Mining:
        self.flush()
        rows = slice(int(self.offsets[layer]), int(self.offsets[layer + 1]))
        count = int(self.count.numpy())
        return self.state.result(count, int(self.widths[layer]), rows)

    def reset(self) -> None:
        """Back to no images seen, keeping the compiled functions."""
        self._pending.clear()
        self._merged = 0
        for variable, initial in zip(self._variables(), self._initial, strict=True):
            variable.assign(initial)

    def _variables(self) -> list[tf.Variable]:
        return [self.count, self.floor, self.ceiling, *self.state.variables()]

    def _maxima(self, images: tf.Tensor):
        images = scale_pixels(images, self.input_range)
        outputs = self.extractor(images, training=False)
        if not isinstance(outputs, list | tuple):
            outputs = [outputs]
        found = [
            maxima(output, self._needed(layer)) for layer, output in enumerate(outputs)
        ]
        values = tf.concat([m[0] for m in found], axis=1)
        where = tf.concat([m[1] for m in found], axis=1)
        return values, where, tf.stack([m[2] for m in found])

    def _needed(self, layer: int):
        """Which (image, unit) pairs of a layer may enter a ranking: above
        the top-k's floor, or finite and below the bottom-k's ceiling. A tie
        with a kept entry loses to it (its image index is lower)."""
        rows = slice(int(self.offsets[layer]), int(self.offsets[layer + 1]))

        def needed(values: tf.Tensor) -> tf.Tensor:
            top = values > self.floor[rows]
            bottom = (values < self.ceiling[rows]) & tf.math.is_finite(values)
            return top | bottom

        return needed

    def _update(self, values: tf.Tensor, where: tf.Tensor) -> None:
        count = tf.shape(values, tf.int64)[0]
        self.state.update(values, where, self.count + tf.range(count, dtype=tf.int64))
        self.count.assign_add(count)
        self.floor.assign(self.state.top.threshold())
        self.ceiling.assign(-self.state.bottom.threshold())


def _miner(extractor: keras.Model, units: list[int], k, bins, scale) -> _Miner:
    """A reset miner, reusing the last one's compiled step when it fits.

    Only the last miner is kept: it holds its extractor, so a cache keyed
    by extractor would keep every model alive.
    """
    key = (id(extractor), tuple(units), k, bins, scale)
    last = _LAST.get("miner")
    if last is not None and _LAST.get("key") == key and last.extractor is extractor:
        last.reset()
        return last
    _LAST.update(key=key, miner=_Miner(extractor, units, k, bins, scale))
    return _LAST["miner"]


def _variable(initial: tf.Tensor) -> tf.Variable:
    return tf.Variable(initial, trainable=False)
