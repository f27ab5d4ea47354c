"""The compiled ascent: many units of one layer optimized as one batch.

A chunk of n units is a batch of n images, and one forward and backward pass
per step serves them all. The whole step loop runs inside one tf.function,
traced once per (layer model, chunk shape, preset, objective, pixel space).
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from atlas.errors import ConfigError, ModelError
from atlas.records import LayerInfo, Synthesis
from atlas.visualize import regularizers, transforms
from atlas.visualize.objectives import (
    check_objective,
    layer_objectives,
    layer_peaks,
    unit_objectives,
)
from atlas.visualize.params import PixelSpace, pixel_space, start_images
from atlas.visualize.presets import Preset, displacement

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Spec:
    """Everything a compiled program is specialized to (its cache key)."""

    kind: str
    objective: str
    preset: Preset
    space: PixelSpace
    shape: tuple[int, int, int, int]  # (chunk, H, W, C)


@dataclass(frozen=True)
class _Program:
    """The two functions run for a chunk, compiled or plain."""

    ascend: Callable[[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor], tf.Tensor]
    evaluate: Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


# Compiled programs per layer model; weak keys let a dropped model go.
_PROGRAMS: weakref.WeakKeyDictionary[keras.Model, dict[_Spec, _Program]] = (
    weakref.WeakKeyDictionary()
)


def synthesize(
    layer_model: keras.Model,
    info: LayerInfo,
    units: Sequence[int],
    preset: Preset,
    *,
    canvas: tuple[int, int, int],
    input_range: tuple[float, float],
    mean: np.ndarray | None = None,
    seed: int = 0,
    steps: int | None = None,
    chunk: int = 64,
    objective: str = "channel",
    eager: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Synthesis:
    """Maximize each unit's objective by regularized gradient ascent.

    `layer_model` maps (N, H, W, C) float32 images to the layer's output.
    Units run `chunk` at a time (at most len(units)); the last chunk is padded
    to full size by repeating its units, so every chunk reuses one trace.
    Each unit's image depends only on (seed, unit), never on its batch.
    """
    check_objective(objective, info.kind)
    wanted = _check_units(units, info)
    canvas = _check_canvas(canvas)
    size = _check_chunk(chunk, len(wanted))
    space = pixel_space(input_range, mean, canvas[-1])
    spec = _Spec(info.kind, objective, preset, space, (size, *canvas))
    program = _program(layer_model, spec, eager)
    count = preset.steps if steps is None else _check_steps(steps)

    parts = []
    for first in range(0, len(wanted), size):
        began = time.perf_counter()
        part = wanted[first : first + size]
        parts.append(_run_chunk(program, spec, part, seed, count))
        logger.debug(
            "%s: units %d..%d, %d steps of %s in %.2f s",
            info.name,
            part[0],
            part[-1],
            count,
            preset.name,
            time.perf_counter() - began,
        )
        if progress is not None:
            progress(len(part))
    return _assemble(preset.name, wanted, parts)


def tracing_count(layer_model: keras.Model) -> int:
    """How many times the ascent loops compiled for `layer_model` traced."""
    programs = _PROGRAMS.get(layer_model, {})
    return sum(p.ascend.experimental_get_tracing_count() for p in programs.values())


def _program(layer_model: keras.Model, spec: _Spec, eager: bool) -> _Program:
    """The cached compiled program for `spec`, or a plain one when eager."""
    model_ref = weakref.ref(layer_model)
    if eager:
        return _build(model_ref, spec)
    programs = _PROGRAMS.setdefault(layer_model, {})
    if spec not in programs:
        programs[spec] = _compile(_build(model_ref, spec), spec)
    return programs[spec]


def _compile(plain: _Program, spec: _Spec) -> _Program:
    """Wrap both functions in tf.function with fixed signatures."""
    images = tf.TensorSpec(spec.shape, tf.float32)
    units = tf.TensorSpec(spec.shape[:1], tf.int32)
    scalar = tf.TensorSpec((), tf.int32)
    signature = [images, units, scalar, scalar]
    return _Program(
        tf.function(plain.ascend, input_signature=signature),
        tf.function(plain.evaluate, input_signature=[images]),
    )


def _build(model_ref: weakref.ref[keras.Model], spec: _Spec) -> _Program:
    """The plain (uncompiled) ascent loop and objective read-out for `spec`."""

    def outputs(images: tf.Tensor) -> list[tf.Tensor]:
        result = model_ref()(images, training=False)
        return list(result) if isinstance(result, list | tuple) else [result]

    def read(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        post, *rest = outputs(images)
        pre = rest[0] if rest else post
        return (
            layer_objectives(post, spec.kind, spec.objective),
            layer_objectives(pre, spec.kind, spec.objective),
        )

    def evaluate(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(objectives, peaks) of the layer's units, each (N, U)."""
        post = outputs(images)[0]
        return (
            layer_objectives(post, spec.kind, spec.objective),
            layer_peaks(post, spec.kind),
        )

    def ascend(
        x: tf.Tensor, units: tf.Tensor, steps: tf.Tensor, seed: tf.Tensor
    ) -> tf.Tensor:
        mean = tf.constant(spec.space.mean_array)

        def objectives(x: tf.Tensor, i: tf.Tensor) -> tf.Tensor:
            pixels = spec.preset.jitter
            moved = transforms.jitter(x, pixels, seed, units, i)
            post, pre = read(moved + mean)
            post = unit_objectives(post, units)
            pre = unit_objectives(pre, units)
            # A redirected ReLU gradient: while a unit is off, where its
            # own gradient is zero, climb its pre-activation instead.
            return tf.where(post <= 0, pre, post)

        for i in tf.range(steps):
            x = _step(x, i, units, objectives, spec)
        return x

    return _Program(ascend, evaluate)


def _step(
    x: tf.Tensor,
    i: tf.Tensor,
    units: tf.Tensor,
    objectives: Callable[[tf.Tensor, tf.Tensor], tf.Tensor],
    spec: _Spec,
) -> tf.Tensor:
    """One step: gradient ascent on x, then the preset's regularizers."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        objective = objectives(x, i)
    grad = tape.gradient(objective, x)
    if grad is None:
        raise ModelError("the layer's output does not depend on its input image.")

    x = x + displacement(grad, spec.preset, spec.space.scale)
    x = _regularize(x, grad, i, spec.preset)
    low, high = spec.space.bounds()
    return tf.clip_by_value(x, low, high)


def _regularize(
    x: tf.Tensor, grad: tf.Tensor, i: tf.Tensor, preset: Preset
) -> tf.Tensor:
    """Apply the preset's regularizers in the paper's order."""
    if preset.decay > 0:
        x = regularizers.decay(x, preset.decay)
    if preset.blurs:
        x = tf.cond(
            tf.equal(i % preset.blur_every, 0),
            lambda: regularizers.blur(x, preset.blur_sigma),
            lambda: x,
        )
    if preset.norm_percentile > 0:
        x = regularizers.clip_small_norm(x, preset.norm_percentile)
    if preset.contribution_percentile > 0:
        x = regularizers.clip_small_contribution(
            x, grad, preset.contribution_percentile
        )
    return x


def _run_chunk(
    program: _Program, spec: _Spec, units: np.ndarray, seed: int, steps: int
) -> tuple[np.ndarray, ...]:
    """Optimize one chunk: (images, start, final, layer_max, peak)."""
    order = np.arange(spec.shape[0]) % len(units)
    x0 = start_images(units.tolist(), spec.shape[1:], seed, spec.space)[order]
    padded = units[order].astype(np.int32)
    x = program.ascend(
        tf.constant(x0), tf.constant(padded), tf.constant(steps), tf.constant(seed)
    )

    space, n = spec.space, len(units)
    images = space.to_images(x.numpy())
    start = program.evaluate(tf.constant(space.to_images(x0)))[0].numpy()[:n]
    final, peak = (v.numpy()[:n] for v in program.evaluate(tf.constant(images)))
    rows = np.arange(n)
    layer_max = final[rows, units] >= final.max(axis=1)
    chosen = (start[rows, units], final[rows, units], layer_max, peak[rows, units])
    return (images[:n], *chosen)


def _assemble(name: str, units: np.ndarray, parts: list[tuple]) -> Synthesis:
    """Join the chunks' results into one record."""
    columns = zip(*parts, strict=True)
    images, start, final, layer_max, peak = (np.concatenate(c) for c in columns)
    return Synthesis(name, units, images, start, final, layer_max, peak)


def _check_units(units: Sequence[int], info: LayerInfo) -> np.ndarray:
    """Units as an int64 array, each in [0, info.units)."""
    wanted = np.asarray(units, np.int64).reshape(-1)
    if wanted.size == 0:
        raise ConfigError(f"layer {info.name!r}: no units to synthesize.")
    bad = wanted[(wanted < 0) | (wanted >= info.units)]
    if bad.size:
        raise ConfigError(
            f"layer {info.name!r} has units 0..{info.units - 1}; "
            f"got {bad.tolist()}. Remove them from units."
        )
    return wanted


def _check_canvas(canvas: tuple[int, int, int]) -> tuple[int, int, int]:
    """Canvas as three positive ints (H, W, C)."""
    sizes = tuple(int(size) for size in canvas)
    if len(sizes) != 3 or min(sizes) < 1:
        raise ConfigError(
            f"canvas must be (height, width, channels), all > 0; got {canvas!r}."
        )
    return sizes


def _check_chunk(chunk: int, count: int) -> int:
    """The batch size to run: chunk, but no larger than the unit count."""
    if chunk < 1:
        raise ConfigError(f"chunk must be >= 1 units, got {chunk!r}.")
    return min(int(chunk), count)


def _check_steps(steps: int) -> int:
    if steps < 0:
        raise ConfigError(f"steps must be >= 0, got {steps!r}.")
    return int(steps)
