"""Streaming histograms of per-image maximum activation, one per unit, kept
on the device and exact whatever the order or batching of the images.

Bins are aligned powers of two: bin j of width w = 2**e covers [j*w, (j+1)*w).
Each unit keeps the smallest e at which all values seen so far fit in its
bins, and its window starts at the bin of the lowest value. When a batch
needs a wider e, every old bin lies inside one new bin (aligned bins nest),
so counts merge exactly: the final histogram is the histogram of all values
at the final e, the same for any order and batching of the data.
"""

from __future__ import annotations

import logging

import numpy as np
import tensorflow as tf

logger = logging.getLogger(__name__)

# Narrowest bin: 2**-24 (about 6e-8), so that a constant unit still gets
# finite, distinct edges.
MIN_EXPONENT = -24
# Bins are at least 2**-24 of the largest magnitude seen (float32's relative
# resolution), so bin indices stay below 2**24, exact in float32.
RELATIVE_BITS = 24
# Candidate exponents tried above the estimate from log2, which may round
# either way; the smallest that fits is kept.
_CANDIDATES = 4
_MANTISSA_BITS = 52  # IEEE 754 binary64
_EXPONENT_BIAS = 1023


class StreamingHistogram:
    """Counts per unit of the values it is given, in `bins` bins."""

    def __init__(self, units: int, bins: int) -> None:
        if bins < 2:
            raise ValueError(f"a histogram needs at least 2 bins, got {bins}")
        self.units, self.bins = units, bins
        self.exponent = tf.Variable(tf.fill([units], MIN_EXPONENT), trainable=False)
        self.start = tf.Variable(tf.zeros([units], tf.int64), trainable=False)
        self.counts = tf.Variable(tf.zeros([units, bins], tf.int64), trainable=False)
        self.low = tf.Variable(_filled(units, np.inf), trainable=False)
        self.high = tf.Variable(_filled(units, -np.inf), trainable=False)

    def variables(self) -> list[tf.Variable]:
        return [self.exponent, self.start, self.counts, self.low, self.high]

    def update(self, values: tf.Tensor, finite: tf.Tensor | None = None) -> None:
        """Add (N, units) float32 values; non-finite values are left out.

        The per-value work stays in float32 and is exact: bin widths are
        powers of two, and RELATIVE_BITS keeps every bin index below 2**24.
        """
        if finite is None:
            finite = tf.math.is_finite(values)
        low = tf.minimum(self.low, _column(tf.where(finite, values, np.inf), min))
        high = tf.maximum(self.high, _column(tf.where(finite, values, -np.inf), max))
        seen = low <= high
        exponent = tf.where(seen, self._exponent(low, high, seen), self.exponent)
        width = tf.pow(tf.constant(2.0, tf.float64), tf.cast(exponent, tf.float64))
        start = tf.floor(tf.where(seen, low, tf.zeros_like(low)) / width)
        counts = self._rebinned(width, tf.cast(start, tf.int64))
        scale = tf.cast(1.0 / width, tf.float32)
        bins = tf.floor(values * scale) - tf.cast(start, tf.float32)
        bins = tf.cast(tf.clip_by_value(bins, 0.0, self.bins - 1.0), tf.int32)
        counts += self._count(bins, finite)
        self.exponent.assign(exponent)
        self.start.assign(tf.cast(start, tf.int64))
        self.counts.assign(counts)
        self.low.assign(low)
        self.high.assign(high)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(counts (units, bins) int64, edges (units, bins + 1) float64)."""
        width = np.exp2(self.exponent.numpy().astype(np.float64))
        steps = np.arange(self.bins + 1, dtype=np.float64)
        edges = (self.start.numpy()[:, None] + steps) * width[:, None]
        return self.counts.numpy().copy(), edges

    def _exponent(self, low, high, seen) -> tf.Tensor:
        """The smallest allowed exponent at which [low, high] fits the bins."""
        zero = tf.zeros_like(low)
        low, high = tf.where(seen, low, zero), tf.where(seen, high, zero)
        span = (high - low) / (self.bins - 1)
        guess = tf.math.ceil(tf.math.log(span) / np.log(2.0)) - 2
        never = tf.fill(tf.shape(guess), tf.constant(-1e9, tf.float64))
        guess = tf.where(span > 0, guess, never)
        floor = tf.maximum(self.exponent, _relative_floor(low, high))
        base = tf.maximum(tf.cast(guess, tf.int32), floor)
        chosen = base + _CANDIDATES - 1
        for offset in reversed(range(_CANDIDATES - 1)):
            exponent = base + offset
            chosen = tf.where(self._fits(low, high, exponent), exponent, chosen)
        return chosen

    def _fits(self, low, high, exponent) -> tf.Tensor:
        width = tf.pow(tf.constant(2.0, tf.float64), tf.cast(exponent, tf.float64))
        used = tf.floor(high / width) - tf.floor(low / width)
        return used <= self.bins - 1

    def _rebinned(self, width: tf.Tensor, start: tf.Tensor) -> tf.Tensor:
        """The counts so far, moved into the bins of the new width and start."""
        old = tf.pow(tf.constant(2.0, tf.float64), tf.cast(self.exponent, tf.float64))
        steps = tf.range(self.bins, dtype=tf.float64)
        left = (tf.cast(self.start, tf.float64)[:, None] + steps) * old[:, None]
        bins = tf.cast(tf.floor(left / width[:, None]), tf.int64) - start[:, None]
        # Only empty bins can land outside the new window.
        bins = tf.clip_by_value(bins, 0, self.bins - 1)
        return self._segment(self.counts, bins)

    def _count(self, bins: tf.Tensor, finite: tf.Tensor) -> tf.Tensor:
        """Counts per (unit, bin) of (N, units) bin indices, finite ones only."""
        size = self.units * self.bins
        ids = bins + tf.range(self.units, dtype=tf.int32) * self.bins
        ids = tf.where(finite, ids, size)  # non-finite: one spare bin
        counts = tf.math.bincount(
            tf.reshape(ids, [-1]), minlength=size + 1, maxlength=size + 1
        )
        return tf.cast(tf.reshape(counts[:size], [self.units, self.bins]), tf.int64)

    def _segment(self, counts: tf.Tensor, bins: tf.Tensor) -> tf.Tensor:
        rows = tf.range(self.units, dtype=tf.int64)[:, None] * self.bins
        ids = tf.reshape(rows + bins, [-1])
        total = tf.math.unsorted_segment_sum(
            tf.reshape(counts, [-1]), ids, self.units * self.bins
        )
        return tf.reshape(total, [self.units, self.bins])


def _column(values: tf.Tensor, reduce) -> tf.Tensor:
    """min or max over images of (N, units) values, as float64."""
    op = tf.reduce_min if reduce is min else tf.reduce_max
    return tf.cast(op(values, axis=0), tf.float64)


def _filled(units: int, value: float) -> tf.Tensor:
    return tf.fill([units], tf.constant(value, tf.float64))


def _relative_floor(low: tf.Tensor, high: tf.Tensor) -> tf.Tensor:
    """floor(log2(largest magnitude)) + 1 - RELATIVE_BITS, read exactly from
    the float64 exponent bits; MIN_EXPONENT for zero."""
    magnitude = tf.maximum(tf.abs(low), tf.abs(high))
    bits = tf.bitwise.right_shift(
        tf.bitcast(magnitude, tf.int64), tf.constant(_MANTISSA_BITS, tf.int64)
    )
    power = tf.cast(bits, tf.int32) - _EXPONENT_BIAS
    floor = power + 1 - RELATIVE_BITS
    return tf.maximum(tf.where(magnitude > 0, floor, MIN_EXPONENT), MIN_EXPONENT)
