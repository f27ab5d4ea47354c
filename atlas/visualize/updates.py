"""Step rules: how a gradient becomes a change of the parameters.

Gradient ascent with the paper's step policies ("constant", "progress"),
and Adam. Every rule acts on each sample on its own, so no image depends on
the others in its batch.
"""

from __future__ import annotations

import tensorflow as tf

from atlas.visualize.presets import Preset

# Keeps steps finite for a zero gradient (a dead unit), which then stays put.
GRADIENT_EPS = 1e-20
# Gradient RMS, per 0-255 level, that a preset's step size is taken to act
# on: at lr 100 pixels move 100 * 0.04 = 4 levels RMS per step. Measured on
# the digits example: the paper's literal yosinski-3 step moved its pixels
# by about 0.04 levels per step, too little to leave the start noise in
# 1000 steps, and 100x that gave clean, recognizable digits.
REFERENCE_GRADIENT_RMS = 0.04
# Adam's decay rates and denominator guard: Kingma and Ba (2015)'s defaults,
# with Keras's epsilon.
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-7


def displacement(grad: tf.Tensor, preset: Preset, scale: float) -> tf.Tensor:
    """The step's change of x, (N, H, W, C), in the model's pixel units.

    The paper's step sizes were tuned on CaffeNet, whose gradients have
    their own magnitude; taken literally they barely move a smaller model.
    So each sample's gradient is first rescaled to `REFERENCE_GRADIENT_RMS`
    per 0-255 level: "constant" then moves pixels by lr * reference levels
    RMS per step, on any model and any input range. "progress" takes the
    toolbox's step desired_progress / |g|^2 (to first order the objective
    rises by desired_progress), never moving more than "constant" would.
    """
    axes = list(range(1, grad.shape.rank))
    rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=axes, keepdims=True))
    largest = preset.lr * REFERENCE_GRADIENT_RMS * scale / (rms + GRADIENT_EPS)
    if preset.step_policy == "constant":
        return largest * grad

    squared = tf.reduce_sum(tf.square(grad), axis=axes, keepdims=True)
    progress = preset.desired_progress / (squared + GRADIENT_EPS)
    return tf.minimum(largest, progress) * grad


def adam(
    grad: tf.Tensor,
    moments: tuple[tf.Tensor, tf.Tensor],
    count: tf.Tensor,
    lr: float,
) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
    """One Adam ascent step: (change, new moments); `count` is 1-based.

    Elementwise, so each sample's change depends on its own gradient alone.
    """
    first, second = moments
    first = ADAM_BETA_1 * first + (1 - ADAM_BETA_1) * grad
    second = ADAM_BETA_2 * second + (1 - ADAM_BETA_2) * tf.square(grad)
    t = tf.cast(count, tf.float32)
    mean = first / (1 - ADAM_BETA_1**t)
    spread = second / (1 - ADAM_BETA_2**t)
    change = lr * mean / (tf.sqrt(spread) + ADAM_EPSILON)
    return change, (first, second)
