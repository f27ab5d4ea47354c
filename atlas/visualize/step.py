"""One ascent program: the step loop, as a plain function to compile.

Each step renders the parameters into an image, transforms it, reads the
layer, climbs every sample's own objective and applies the preset's step
rule and regularizers. `build_ascent` returns the loop; `ascent.py`
compiles it once per `Spec`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from atlas.errors import ModelError
from atlas.visualize import regularizers, transforms, updates
from atlas.visualize.objectives import (
    ascent_objectives,
    layer_objectives,
    similarity,
    unit_objectives,
)
from atlas.visualize.params import Fourier, Pixels
from atlas.visualize.presets import Preset
from atlas.visualize.views import ViewSet

# How hard diversity images push apart: the penalty is this times the
# image's own objective (held constant) times its mean similarity to the
# others, so it scales with the unit's activation. Tuned on the digits
# example (logits and conv2, yosinski-3-jitter and fourier): at 0.3 each
# diversity image keeps 70 % or more of the maximizing image's objective
# (median 97 %) and a unit's two images differ by 25-37 of 255 levels on
# average; at 1.0 some logits fell below 0.
DIVERSITY_WEIGHT = 0.3
# Keeps the diversity penalty alive while a unit's objective is still 0.
DIVERSITY_FLOOR = 1e-3

# Parameters per batch from which XLA pays: below it (the digits example's
# 64 images of 32 x 32 are 65,536), a program's XLA compile, about a second,
# takes longer than its fused steps save; above it (16 MobileNetV2 images
# of 128 x 128 x 3 are 786,432), the fused steps cut about 10 % of a step.
XLA_MIN_VALUES = 1 << 18

Outputs = Callable[[tf.Tensor], list[tf.Tensor]]


@dataclass(frozen=True)
class Spec:
    """Everything a compiled program is specialized to (its cache key)."""

    kind: str
    objective: str
    preset: Preset
    param: Pixels | Fourier
    views: ViewSet
    size: int  # units per chunk; the batch holds size * views.per_unit


def build_ascent(
    outputs: Outputs, spec: Spec, compiled: bool = True
) -> Callable[..., tf.Tensor]:
    """The loop (params, units, keys, signs, steps, seed) -> params.

    With `compiled` and a batch of at least XLA_MIN_VALUES parameters, the
    steps around the model (rendering a spectrum, the step rule) run as XLA
    kernels, which fuse their elementwise work and run FFTs about three
    times faster than TensorFlow's own on CPU; the model itself stays on
    TensorFlow's kernels, since XLA runs convolutions several times slower
    on CPU (see README, Performance).
    """
    batch = spec.size * spec.views.per_unit * math.prod(spec.param.shape)
    fuse = compiled and batch >= XLA_MIN_VALUES
    parts = _Parts(
        render=_xla(spec.param.to_x, fuse and _fourier(spec)),
        update=_xla(functools.partial(_update, spec=spec), fuse),
        finish=_xla(functools.partial(_finish, spec=spec), fuse),
    )

    def ascend(params, units, keys, signs, steps, seed):
        draws = transforms.draws_at(seed, keys, steps) if _draws(spec) else {}
        state = _start_state(params, spec.preset)
        for i in tf.range(steps):
            now = {name: values[i] for name, values in draws.items()}
            samples = (units, signs, now)
            state = _step(state, i, samples, outputs, parts, spec)
        return state[0]

    return ascend


@dataclass(frozen=True)
class _Parts:
    """The steps around the model."""

    render: Callable[[tf.Tensor], tf.Tensor]
    update: Callable[..., tuple]
    finish: Callable[..., tf.Tensor]


def _xla(function: Callable, compiled: bool) -> Callable:
    return tf.function(function, jit_compile=True) if compiled else function


def _start_state(params: tf.Tensor, preset: Preset) -> tuple[tf.Tensor, ...]:
    """(params,) or, for Adam, (params, first moment, second moment)."""
    if preset.step_policy != "adam":
        return (params,)
    return (params, tf.zeros_like(params), tf.zeros_like(params))


def _step(state, i, samples, outputs: Outputs, parts: _Parts, spec: Spec):
    """One step: climb, then the preset's step rule and regularizers."""
    params = state[0]
    with tf.GradientTape() as tape:
        tape.watch(params)
        objective = _objectives(parts.render(params), samples, outputs, spec)
    grad = tape.gradient(objective, params)
    if grad is None:
        raise ModelError("the layer's output does not depend on its input image.")
    params, grad, *moments = parts.update(params, grad, state[1:], i)
    params = _blur(params, i, spec.preset)
    return (parts.finish(params, grad), *moments)


def _update(params, grad, moments, i, spec: Spec) -> tuple:
    """The step rule, then L2 decay: (params, finite grad, *moments)."""
    # A float16 model can overflow; a non-finite gradient moves nothing.
    grad = tf.where(tf.math.is_finite(grad), grad, tf.zeros_like(grad))
    preset = spec.preset
    if preset.step_policy == "adam":
        lr = preset.lr * (spec.param.space.scale if _pixels(spec) else 1.0)
        change, moments = updates.adam(grad, moments, i + 1, lr)
    else:
        change = updates.displacement(grad, preset, spec.param.space.scale)
    params = params + change
    if preset.decay > 0:
        params = regularizers.decay(params, preset.decay)
    return (params, grad, *moments)


def _finish(params: tf.Tensor, grad: tf.Tensor, spec: Spec) -> tf.Tensor:
    """The percentile clips, then the parameterization's own bounds."""
    preset = spec.preset
    if preset.norm_percentile > 0:
        params = regularizers.clip_small_norm(params, preset.norm_percentile)
    if preset.contribution_percentile > 0:
        params = regularizers.clip_small_contribution(
            params, grad, preset.contribution_percentile
        )
    return spec.param.project(params)


def _objectives(x, samples, outputs: Outputs, spec: Spec) -> tf.Tensor:
    """(N,) each sample's objective on its transformed image."""
    units, signs, draws = samples
    x = _transform(x, draws, spec.preset)
    post, *rest = outputs(x + spec.param.space.mean_array)
    pre = rest[0] if rest else post
    objective = ascent_objectives(
        unit_objectives(layer_objectives(post, spec.kind, spec.objective), units),
        unit_objectives(layer_objectives(pre, spec.kind, spec.objective), units),
        signs,
    )
    if spec.views.diversity:
        objective -= _diversity_penalty(post, objective, spec)
    return objective


def _transform(x, draws, preset: Preset) -> tf.Tensor:
    """The preset's random transforms; padding alone changes nothing."""
    if not draws:
        return x
    if not _moves(preset):
        return transforms.shift(x, draws["rows"], draws["columns"], preset.jitter)
    return transforms.random_transform(
        x,
        draws,
        padding=preset.pad,
        jitter_pixels=preset.jitter,
        scales=preset.scale,
        degrees=preset.rotate,
    )


def _diversity_penalty(post: tf.Tensor, objective: tf.Tensor, spec: Spec):
    """(N,) the penalty of each sample: 0 outside the diversity views."""
    views, size = spec.views, spec.size
    first = views.first_diverse * size
    grouped = tf.reshape(post[first:], (views.diversity, size, *post.shape[1:]))
    order = [1, 0, *range(2, grouped.shape.rank)]
    similar = tf.transpose(similarity(tf.transpose(grouped, order)))
    weight = tf.stop_gradient(tf.abs(objective[first:]) + DIVERSITY_FLOOR)
    penalty = DIVERSITY_WEIGHT * weight * tf.reshape(similar, (-1,))
    return tf.concat([tf.zeros((first,)), penalty], axis=0)


def _blur(params: tf.Tensor, i: tf.Tensor, preset: Preset) -> tf.Tensor:
    """The paper's Gaussian blur every `blur_every` steps, outside XLA, whose
    CPU convolutions are slow."""
    if not preset.blurs:
        return params
    return tf.cond(
        tf.equal(i % preset.blur_every, 0),
        lambda: regularizers.blur(params, preset.blur_sigma),
        lambda: params,
    )


def _pixels(spec: Spec) -> bool:
    return isinstance(spec.param, Pixels)


def _fourier(spec: Spec) -> bool:
    return isinstance(spec.param, Fourier)


def _draws(spec: Spec) -> bool:
    """Whether the loop needs random draws: for transforms."""
    return spec.preset.jitter > 0 or _moves(spec.preset)


def _moves(preset: Preset) -> bool:
    return preset.scale != (1.0, 1.0) or preset.rotate > 0
