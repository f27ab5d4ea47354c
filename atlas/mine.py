"""Streaming top-k mining: one pass over the dataset serves every layer.

For each unit, an image counts once, at its strongest spatial position.
The running top-k per unit is merged with each batch, so memory is
O(layers x units x k) whatever the size of the dataset.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from atlas.errors import DataError
from atlas.records import LayerInfo, Mining

logger = logging.getLogger(__name__)


@dataclass
class _Running:
    """One layer's running top-k and statistics."""

    values: np.ndarray  # (k, U) best first
    images: np.ndarray  # (k, U)
    positions: np.ndarray  # (k, U, 2)
    total: np.ndarray  # (U,) sum of per-image maxima
    best: np.ndarray  # (U,)
    active: np.ndarray  # (U,) images with a positive maximum
    count: int = 0


def mine(
    extractor: keras.Model,
    infos: Sequence[LayerInfo],
    batches: Iterable[np.ndarray],
    k: int = 9,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Mining]:
    """Top-k images per unit of every layer of `extractor`, in one pass.

    `extractor` returns one output per info, in order. Images are numbered
    by their order in `batches`; equal values rank the lower index first.
    """
    if k < 1:
        raise DataError(f"mine.top_k must be at least 1, got {k}.")
    reduce = _reducer(extractor, len(infos))
    state = [_start(info, k) for info in infos]
    for batch in batches:
        maxima = reduce(tf.convert_to_tensor(batch, tf.float32))
        for running, (values, positions) in zip(state, maxima, strict=True):
            _merge(running, values.numpy(), positions.numpy())
        if progress is not None:
            progress(len(batch))
    if not state or state[0].count == 0:
        raise DataError("the dataset yielded no images to mine.")
    return {info.name: _finish(r) for info, r in zip(infos, state, strict=True)}


def spatial_maxima(output: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per image and unit, the largest activation and its (row, col).

    (N, H, W, U) -> values (N, U) and positions (N, U, 2); a dense (N, U)
    output is its own maximum at (0, 0). NaN counts as -inf. The first
    position in row-major order wins a tie.
    """
    output = tf.cast(output, tf.float32)
    output = tf.where(tf.math.is_nan(output), -np.inf, output)
    if output.shape.rank == 2:
        zeros = tf.zeros(tf.concat([tf.shape(output), [2]], 0), tf.int64)
        return output, zeros
    shape = tf.shape(output)
    flat = tf.reshape(output, (shape[0], shape[1] * shape[2], shape[3]))
    where = tf.argmax(flat, axis=1)
    values = tf.reduce_max(flat, axis=1)
    width = tf.cast(shape[2], tf.int64)
    return values, tf.stack([where // width, where % width], axis=-1)


def _reducer(extractor: keras.Model, count: int):
    @tf.function(reduce_retracing=True)
    def reduce(images: tf.Tensor):
        outputs = extractor(images, training=False)
        if count == 1 and not isinstance(outputs, list | tuple):
            outputs = [outputs]
        return [spatial_maxima(output) for output in outputs]

    return reduce


def _start(info: LayerInfo, k: int) -> _Running:
    units = info.units
    return _Running(
        values=np.full((k, units), -np.inf, np.float32),
        images=np.full((k, units), -1, np.int64),
        positions=np.zeros((k, units, 2), np.int64),
        total=np.zeros(units, np.float64),
        best=np.full(units, -np.inf, np.float32),
        active=np.zeros(units, np.int64),
    )


def _merge(running: _Running, values: np.ndarray, positions: np.ndarray) -> None:
    """Fold one batch's (B, U) maxima into the running top-k."""
    batch = len(values)
    indices = running.count + np.arange(batch, dtype=np.int64)
    finite = np.where(np.isfinite(values), values, 0.0)
    running.total += finite.sum(axis=0)
    running.best = np.maximum(running.best, values.max(axis=0))
    running.active += (values > 0).sum(axis=0)
    running.count += batch

    # Candidates stand in image order (the running top-k's images all come
    # before this batch's), so a stable sort on value alone breaks ties by
    # the lower image index.
    k = len(running.values)
    pool_values = np.concatenate([running.values, values])
    pool_images = np.concatenate(
        [running.images, np.broadcast_to(indices[:, None], values.shape)]
    )
    pool_positions = np.concatenate(
        [running.positions, np.asarray(positions, np.int64)]
    )
    order = np.argsort(-pool_values, axis=0, kind="stable")[:k]
    running.values = np.take_along_axis(pool_values, order, axis=0)
    running.images = np.take_along_axis(pool_images, order, axis=0)
    running.positions = np.take_along_axis(pool_positions, order[..., None], axis=0)


def _finish(running: _Running) -> Mining:
    unused = running.images < 0
    values = np.where(unused, -np.inf, running.values)
    return Mining(
        values=values.T.astype(np.float32),
        images=running.images.T.copy(),
        positions=np.transpose(running.positions, (1, 0, 2)).copy(),
        mean=running.total / max(running.count, 1),
        max=running.best,
        active_fraction=running.active / max(running.count, 1),
        count=running.count,
    )
