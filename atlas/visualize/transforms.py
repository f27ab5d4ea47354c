"""Random, differentiable transforms applied to the batch at every step.

Each sample draws its own randomness from (seed, unit, step) through a
counter-based hash, so an image never depends on which units share its
batch, and the same seed gives the same image on every run.
"""

from __future__ import annotations

import tensorflow as tf

# Odd 32-bit constants for the hash's key mixing, from the Murmur3 and
# SplitMix families; any odd constants with well-spread bits would do.
_MIX = (0x9E3779B1, 0x85EBCA6B, 0xC2B2AE35)
_MASK = 0xFFFFFFFF


def uniform(seed: tf.Tensor, units: tf.Tensor, step: tf.Tensor, salt: int):
    """Per-sample uniform floats in [0, 1), shape (N,).

    A Murmur3-style finalizer over the (seed, unit, step, salt) key; 32-bit
    arithmetic is kept in int64 with masks, which TensorFlow runs anywhere.
    """
    key = _multiply(tf.cast(units, tf.int64) & _MASK, _MIX[0])
    for part, factor in ((seed, _MIX[1]), (step, _MIX[2]), (salt, _MIX[0])):
        part = _multiply(tf.cast(part, tf.int64) & _MASK, factor)
        key = _multiply(tf.bitwise.bitwise_xor(key, part), _MIX[1])
    for shift, factor in ((16, _MIX[1]), (13, _MIX[2]), (16, None)):
        key = tf.bitwise.bitwise_xor(key, tf.bitwise.right_shift(key, shift))
        if factor is not None:
            key = _multiply(key, factor)
    return tf.cast(key, tf.float32) / float(_MASK + 1)


def _multiply(key: tf.Tensor, factor: int) -> tf.Tensor:
    """(key * factor) mod 2**32 for 32-bit keys, with no int64 overflow."""
    low = (key * (factor & 0xFFFF)) & _MASK
    high = (key * (factor >> 16)) & 0xFFFF
    return (low + tf.bitwise.left_shift(high, 16)) & _MASK


def jitter(
    x: tf.Tensor, pixels: int, seed: tf.Tensor, units: tf.Tensor, step: tf.Tensor
) -> tf.Tensor:
    """Shift each sample by its own whole-pixel offset in [-pixels, pixels].

    Pixels shifted in from past the border repeat the edge pixel, so no
    wrapped-around content appears; the gradient flows back through the
    gather to the pixels that were read.
    """
    if pixels <= 0:
        return x
    span = 2 * pixels + 1
    shape = tf.shape(x)
    for axis, salt in ((1, 1), (2, 2)):
        draw = uniform(seed, units, step, salt) * span
        offset = tf.cast(tf.floor(draw), tf.int32) - pixels
        size = shape[axis]
        where = tf.range(size)[None, :] - offset[:, None]
        where = tf.clip_by_value(where, 0, size - 1)
        x = tf.gather(x, where, axis=axis, batch_dims=1)
    return x
