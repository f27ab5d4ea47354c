"""Per-image maxima of a layer's units, and where in the map they are.

For each image and unit: the largest activation over positions, and the
first position in row-major order that holds it. Mining needs the value of
every pair but the position only of pairs that may still enter a top-k or
bottom-k, which after the first few hundred images are a few percent; the
position of the others is left at 0.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

# Above this share of pairs needing a position, reading one column-maxima
# pool of the whole map costs less than gathering each pair's row.
DENSE_SHARE = 0.25
_LOWEST = np.finfo(np.float32).min

Needed = Callable[[tf.Tensor], tf.Tensor]  # (N, U) values -> (N, U) bool


def spatial_maxima(output: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Per image and unit, the largest activation and its (row, col).

    (N, H, W, U) -> values (N, U) and positions (N, U, 2); a dense (N, U)
    output is its own maximum at (0, 0). NaN activations are skipped; an
    all-NaN map has value -inf. The first position in row-major order wins
    a tie.
    """
    values, where, width = maxima(output)
    return values, tf.stack([where // width, where % width], axis=-1)


def maxima(
    output: tf.Tensor, needed: Needed | None = None
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(values (N, U), row-major flat position (N, U) int32, map width).

    With `needed`, positions are found only where it is true (0 elsewhere).
    """
    output = tf.cast(output, tf.float32)
    if output.shape.rank == 2:
        values = tf.where(tf.math.is_nan(output), -np.inf, output)
        return values, tf.zeros_like(output, tf.int32), tf.constant(1)
    height, width = output.shape[1], output.shape[2]
    if height is None or width is None:
        return _by_argmax(output)
    # LIMITATION: NaN activations are skipped by CPU max-pooling; a device
    # whose pooling propagates NaN ranks such an image last instead.
    rows = tf.nn.max_pool2d(output, (1, width), (1, width), "VALID")[:, :, 0]
    values = tf.reduce_max(rows, axis=1)
    row = first_index(rows, values)
    if needed is None:
        col = _columns_dense(output, values, row, height, width)
    else:
        mask = needed(_no_nan(values))
        col = tf.cond(
            tf.reduce_mean(tf.cast(mask, tf.float32)) > DENSE_SHARE,
            lambda: _columns_dense(output, values, row, height, width),
            lambda: _columns_of(output, values, row, mask, height, width),
        )
    return _no_nan(values), row * width + col, tf.constant(width)


def first_index(maxima: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """First index along axis 1 of (N, L, U) `maxima` equal to (N, U) values
    (the last index where none is, as for an all-NaN map)."""
    length = maxima.shape[1]
    steps = tf.constant(np.arange(length, dtype=np.int32)[None, :, None])
    hit = tf.equal(maxima, values[:, None, :])
    return tf.reduce_min(tf.where(hit, steps, length - 1), axis=1)


def _columns_dense(output, values, row, height: int, width: int) -> tf.Tensor:
    """The first column holding the maximum in row `row`, for every pair.

    The first column that holds the maximum anywhere (from a column-maxima
    pool) is that column unless the maximum is tied in other rows and
    columns; those pairs are checked and their row read alone.
    """
    cols = tf.nn.max_pool2d(output, (height, 1), (height, 1), "VALID")[:, 0]
    col = first_index(cols, values)
    starts = _row_starts(output, row, height, width)
    units = tf.shape(output)[3]
    flat = tf.reshape(output, [-1])
    tied = tf.gather(flat, starts + col * units) < values
    return tf.cond(
        tf.reduce_any(tied),
        lambda: _update(col, tied, flat, starts, values, width, units),
        lambda: col,
    )


def _columns_of(output, values, row, mask, height: int, width: int) -> tf.Tensor:
    """The first column holding the maximum in row `row`, where `mask`."""
    starts = _row_starts(output, row, height, width)
    units = tf.shape(output)[3]
    flat = tf.reshape(output, [-1])
    return _update(tf.zeros_like(row), mask, flat, starts, values, width, units)


def _update(col, which, flat, starts, values, width: int, units) -> tf.Tensor:
    """`col` with the pairs in `which` set by reading their row."""
    pairs = tf.where(which)
    line = tf.gather_nd(starts, pairs)[:, None] + tf.range(width)[None, :] * units
    found = first_index(
        tf.gather(flat, line)[..., None], tf.gather_nd(values, pairs)[:, None]
    )
    return tf.tensor_scatter_nd_update(col, pairs, found[:, 0])


def _row_starts(output, row, height: int, width: int) -> tf.Tensor:
    """Flat index of (image, row[image, unit], column 0, unit), per pair."""
    shape = tf.shape(output)
    images, units = shape[0], shape[3]
    starts = (tf.range(images)[:, None] * height + row) * width
    return starts * units + tf.range(units)[None, :]


def _by_argmax(output: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`maxima` for maps whose size is known only at run time."""
    shape = tf.shape(output)
    flat = tf.reshape(output, (shape[0], shape[1] * shape[2], shape[3]))
    flat = tf.where(tf.math.is_nan(flat), -np.inf, flat)
    values = tf.reduce_max(flat, axis=1)
    where = tf.argmax(flat, axis=1, output_type=tf.int32)
    return _no_nan(values), where, shape[2]


def _no_nan(values: tf.Tensor) -> tf.Tensor:
    """NaN, or the lowest float that max-pooling gives an all-NaN map: -inf."""
    return tf.where(values > _LOWEST, values, -np.inf)
