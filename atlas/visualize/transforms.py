"""Random, differentiable transforms applied to the batch at every step.

Pad, jitter, scale and rotate (Mordvintsev et al. 2015; Olah et al. 2017).
Each sample draws its own randomness from (seed, key, step) through a
counter-based hash, where a sample's key is its unit (and view), so an image
never depends on which units share its batch, and the same seed gives the
same image on every run.
"""

from __future__ import annotations

import math

import tensorflow as tf

# Odd 32-bit constants for the hash's key mixing, from the Murmur3 and
# SplitMix families; any odd constants with well-spread bits would do.
_MIX = (0x9E3779B1, 0x85EBCA6B, 0xC2B2AE35)
_MASK = 0xFFFFFFFF
# Salts that give each random draw of a step its own stream.
_SALTS = {"rows": 1, "columns": 2, "scale": 3, "rotate": 4}


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
    rows = uniform(seed, units, step, _SALTS["rows"])
    columns = uniform(seed, units, step, _SALTS["columns"])
    return shift(x, rows, columns, pixels)


def pad(x: tf.Tensor, pixels: int) -> tf.Tensor:
    """Grow each side by `pixels` of 0: in mean-subtracted x, the centre
    colour, so what later moves in from past the border is neutral."""
    if pixels <= 0:
        return x
    return tf.pad(x, [[0, 0], [pixels, pixels], [pixels, pixels], [0, 0]])


def crop(x: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """The centre (height, width) window; the extra row or column of an odd
    difference is cut from the bottom and right."""
    shape = tf.shape(x)
    top = (shape[1] - height) // 2
    left = (shape[2] - width) // 2
    return x[:, top : top + height, left : left + width, :]


def scale(x: tf.Tensor, factors: tf.Tensor) -> tf.Tensor:
    """Magnify sample n by factors[n] about the image centre."""
    factors = tf.cast(factors, tf.float32)
    zeros = tf.zeros_like(factors)
    return _zoom(x, factors, zeros, zeros)


def rotate(x: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """Rotate sample n by degrees[n] (at most 45) about the image centre;
    positive angles turn the content counter-clockwise as displayed."""
    degrees = tf.cast(degrees, tf.float32)
    return affine(x, centred_maps(x, tf.ones_like(degrees), degrees))


def random_transform(
    x: tf.Tensor,
    draws: dict[str, tf.Tensor],
    *,
    padding: int = 0,
    jitter_pixels: int = 0,
    scales: tuple[float, float] = (1.0, 1.0),
    degrees: float = 0.0,
) -> tf.Tensor:
    """Pad, jitter, scale and rotate each sample, then crop to its size.

    `draws` holds (N,) uniforms in [0, 1) under "rows", "columns", "scale"
    and "rotate" (see `draws_at`). The four compose into one affine map,
    applied in one resample: padding by the centre colour and cropping back
    leave only that colour where content moves in from past the border,
    which the resample's fill provides, so `padding` changes nothing else.
    """
    del padding  # folded into the resample's fill, see above
    span = 2 * jitter_pixels + 1
    rows = tf.floor(draws["rows"] * span) - jitter_pixels
    columns = tf.floor(draws["columns"] * span) - jitter_pixels
    low, high = scales
    factors = low + draws["scale"] * (high - low)
    if degrees == 0:
        return _zoom(x, factors, rows, columns)
    angles = (2.0 * draws["rotate"] - 1.0) * degrees
    maps = centred_maps(x, factors, angles)
    # Jitter moves content by (rows, columns): read that much further back.
    shift = tf.stack([rows, columns], axis=-1)[..., None]
    return affine(x, tf.concat([maps[..., :2], maps[..., 2:] - shift], axis=-1))


def draws_at(
    seed: tf.Tensor, keys: tf.Tensor, steps: tf.Tensor
) -> dict[str, tf.Tensor]:
    """Every uniform draw of every step, (steps, N) each, by name: drawn
    once before the loop, read row by row inside it."""
    counts = tf.range(steps)[:, None]
    return {
        name: uniform(seed, keys[None, :], counts, salt)
        for name, salt in _SALTS.items()
    }


def shift(x: tf.Tensor, rows: tf.Tensor, columns: tf.Tensor, pixels: int) -> tf.Tensor:
    """Shift each sample by whole pixels drawn from uniforms in [0, 1):
    floor(u * (2 pixels + 1)) - pixels per axis, repeating the edge pixel."""
    span = 2 * pixels + 1
    shape = tf.shape(x)
    for axis, draw in ((1, rows), (2, columns)):
        offset = tf.cast(tf.floor(draw * span), tf.int32) - pixels
        size = shape[axis]
        where = tf.range(size)[None, :] - offset[:, None]
        where = tf.clip_by_value(where, 0, size - 1)
        x = tf.gather(x, where, axis=axis, batch_dims=1)
    return x


def centred_maps(x: tf.Tensor, factors: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """(N, 2, 3) maps of a magnification and a rotation about the centre:
    source = c + R(-angle) (p - c) / factor, c = ((H-1)/2, (W-1)/2)."""
    shape = tf.cast(tf.shape(x), tf.float32)
    centre = tf.stack([(shape[1] - 1) / 2, (shape[2] - 1) / 2])
    radians = degrees * (math.pi / 180.0)
    cos = tf.cos(radians) / factors
    sin = tf.sin(radians) / factors
    # Rows grow downwards, so a counter-clockwise turn on screen reads the
    # source at (r, c) -> (cos r + sin c, -sin r + cos c) about the centre.
    linear = tf.reshape(tf.stack([cos, sin, -sin, cos], axis=-1), (-1, 2, 2))
    offset = centre[None, :] - tf.linalg.matvec(linear, centre[None, :])
    return tf.concat([linear, offset[..., None]], axis=-1)


def affine(x: tf.Tensor, maps: tf.Tensor) -> tf.Tensor:
    """Resample each sample through its own affine map, linearly.

    maps (N, 2, 3) send an output pixel (row, col, 1) to the input position
    it reads; positions past the border read 0 (the centre colour). Two
    one-dimensional passes (Catmull and Smith 1980): each row is resampled
    along its columns, then each column along its rows, both by
    tf.image.crop_and_resize, whose gradient is exact. The map's top-left
    entry must not be 0 (rotations up to 45 degrees are safe).
    """
    m00, m01, t0 = maps[:, 0, 0], maps[:, 0, 1], maps[:, 0, 2]
    m10, m11, t1 = maps[:, 1, 0], maps[:, 1, 1], maps[:, 1, 2]
    # out(r, c) = in(f(r, c), g(f(r, c), c)): the row pass makes
    # T(u, c) = in(u, g(u, c)), the column pass reads T(f(r, c), c).
    slope = m10 / m00
    rows_pass = _line_pass(x, m11 - slope * m01, slope, t1 - slope * t0, axis=2)
    return _line_pass(rows_pass, m00, m01, t0, axis=1)


def _line_pass(x, stretch, skew, offset, axis: int) -> tf.Tensor:
    """Resample each line of `axis` (2: rows, 1: columns): position j of
    line k reads stretch * j + skew * k + offset, linearly, 0 outside."""
    shape = tf.shape(x)
    batch = shape[0]
    length = tf.cast(shape[axis], tf.float32)
    lines = shape[3 - axis]
    k = tf.range(lines, dtype=tf.float32)[None, :]
    start = (skew[:, None] * k + offset[:, None]) / tf.maximum(length - 1, 1.0)
    end = start + stretch[:, None] * tf.ones_like(k)
    at = k / tf.maximum(tf.cast(lines, tf.float32) - 1, 1.0) * tf.ones_like(start)
    if axis == 2:
        boxes, size = [at, start, at, end], (1, shape[2])
    else:
        boxes, size = [start, at, end, at], (shape[1], 1)
    boxes = tf.reshape(tf.stack(boxes, axis=-1), (-1, 4))
    owners = tf.repeat(tf.range(batch), lines)
    out = tf.image.crop_and_resize(x, boxes, owners, size, extrapolation_value=0.0)
    out = tf.reshape(out, (batch, lines, -1, x.shape[-1]))
    return out if axis == 2 else tf.transpose(out, (0, 2, 1, 3))


def _zoom(x, factors, rows, columns) -> tf.Tensor:
    """Magnify about the centre and move by (rows, columns), per sample.

    Separable, so each pass resamples whole images at once, with every line
    of a sample in the channels of one crop: far cheaper than `affine`.
    """
    shape = tf.cast(tf.shape(x), tf.float32)
    stretch = 1.0 / factors
    down = _axis_pass(x, stretch, (1.0 - stretch) * (shape[1] - 1) / 2 - rows)
    across = _axis_pass(
        tf.transpose(down, (0, 2, 1, 3)),
        stretch,
        (1.0 - stretch) * (shape[2] - 1) / 2 - columns,
    )
    return tf.transpose(across, (0, 2, 1, 3))  # fmt: skip


def _axis_pass(x: tf.Tensor, stretch: tf.Tensor, offset: tf.Tensor) -> tf.Tensor:
    """Resample along the rows axis: row i of sample n reads stretch[n] *
    i + offset[n], linearly, 0 outside. All columns share the map, so they
    travel as channels of a one-column image."""
    shape = tf.shape(x)
    batch, height = shape[0], shape[1]
    last = tf.maximum(tf.cast(height, tf.float32) - 1, 1.0)
    lines = tf.reshape(x, (batch, height, 1, -1))
    top = offset / last
    zeros = tf.zeros_like(top)
    boxes = tf.stack([top, zeros, top + stretch, zeros], axis=-1)
    out = tf.image.crop_and_resize(
        lines, boxes, tf.range(batch), (height, 1), extrapolation_value=0.0
    )
    return tf.reshape(out, shape)
