"""The compiled ascent: many units of one layer optimized as one batch.

A chunk of n units is a batch of n images per view, and one forward and
backward pass per step serves them all. The whole step loop runs inside one
tf.function, traced once per (layer model, chunk shape, preset, objective,
parameterization, views).
"""

from __future__ import annotations

import functools
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
from atlas.visualize import colour as colours
from atlas.visualize import regularizers
from atlas.visualize.canvas import check_canvas
from atlas.visualize.objectives import check_objective, layer_objectives, layer_peaks
from atlas.visualize.params import Fourier, Pixels, parameterization, pixel_space
from atlas.visualize.presets import Preset
from atlas.visualize.step import Spec, build_ascent
from atlas.visualize.views import ViewSet

# The default views: each unit's maximizing image alone.
MAXIMIZE_ONLY = ViewSet()
# Blur, in pixels, before an image's spread is measured as its structure:
# a 1-pixel Gaussian cuts the start noise's spread to about a quarter.
STRUCTURE_BLUR_SIGMA = 1.0

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Program:
    """The two functions run for a chunk, compiled or plain."""

    ascend: Callable[..., tf.Tensor]
    evaluate: Callable[[tf.Tensor], tuple[tf.Tensor, ...]]


# Compiled programs per layer model; weak keys let a dropped model go.
_PROGRAMS: weakref.WeakKeyDictionary[keras.Model, dict[Spec, _Program]] = (
    weakref.WeakKeyDictionary()
)


def synthesize(
    layer_model: keras.Model,
    info: LayerInfo,
    units: Sequence[int],
    preset: Preset,
    **options,
) -> Synthesis:
    """The maximizing image of each unit; options as `synthesize_views`."""
    return synthesize_views(layer_model, info, units, preset, **options)[preset.name]


def synthesize_views(
    layer_model: keras.Model,
    info: LayerInfo,
    units: Sequence[int],
    preset: Preset,
    *,
    canvas: tuple[int, int, int],
    input_range: tuple[float, float],
    mean: np.ndarray | None = None,
    covariance: np.ndarray | None = None,
    views: ViewSet = MAXIMIZE_ONLY,
    seed: int = 0,
    steps: int | None = None,
    chunk: int = 64,
    objective: str = "channel",
    eager: bool = False,
) -> dict[str, Synthesis]:
    """Every view of each unit by regularized gradient ascent, by view key.

    `layer_model` maps (N, H, W, C) float32 images to the layer's output
    (and its pre-activation, if it has one). Units run `chunk` at a time
    (at most len(units)); the last chunk is padded by repeating its units,
    so every chunk reuses one trace. Each image depends only on (seed,
    unit, view), never on its batch. `covariance` is the data's colour
    covariance, for presets that decorrelate colour.
    """
    check_objective(objective, info.kind)
    _check_input(layer_model)
    wanted = _check_units(units, info)
    canvas = _check_canvas(canvas)
    check_canvas(layer_model, canvas, f"layer {info.name!r}")
    size = _check_chunk(chunk, len(wanted))
    param = _param(preset, input_range, mean, covariance, canvas)
    spec = Spec(info.kind, objective, preset, param, views, size)
    program = _program(layer_model, spec, eager)
    count = preset.steps if steps is None else _check_steps(steps)

    parts = []
    for first in range(0, len(wanted), size):
        began = time.perf_counter()
        part = wanted[first : first + size]
        parts.append(_run_chunk(program, spec, part, seed, count))
        logger.debug(
            "%s: units %d..%d, %d steps of %s in %.2f s",
            info.name, part[0], part[-1], count, preset.name,
            time.perf_counter() - began,
        )  # fmt: skip
    names = views.names(preset.name)
    return {
        name: _assemble(preset.name, name, wanted, [part[v] for part in parts])
        for v, name in enumerate(names)
    }


def tracing_count(layer_model: keras.Model) -> int:
    """How many times the ascent loops compiled for `layer_model` traced."""
    programs = _PROGRAMS.get(layer_model, {})
    return sum(p.ascend.experimental_get_tracing_count() for p in programs.values())


def _param(preset, input_range, mean, covariance, canvas) -> Pixels | Fourier:
    space = pixel_space(input_range, mean, canvas[-1])
    if space.image is not None and space.image.shape != canvas:
        raise ConfigError(
            f"the mean image has shape {space.image.shape}; it must be the "
            f"canvas's {canvas}. Resize it to the canvas."
        )
    matrix = None
    if preset.decorrelate:
        matrix = colours.decorrelation_matrix(covariance, canvas[-1])
    return parameterization(preset.param, space, canvas, matrix)


def _program(layer_model: keras.Model, spec: Spec, eager: bool) -> _Program:
    """The cached compiled program for `spec`, or a plain one when eager."""
    model_ref = weakref.ref(layer_model)
    if eager:
        return _build(model_ref, spec, compiled=False)
    programs = _PROGRAMS.setdefault(layer_model, {})
    if spec not in programs:
        programs[spec] = _compile(_build(model_ref, spec), spec)
    return programs[spec]


def _build(
    model_ref: weakref.ref[keras.Model], spec: Spec, compiled: bool = True
) -> _Program:
    """The plain ascent loop and objective read-out for `spec`; its parts
    around the model are XLA-compiled unless `compiled` is off (eager)."""

    def outputs(images: tf.Tensor) -> list[tf.Tensor]:
        result = model_ref()(images, training=False)
        return list(result) if isinstance(result, list | tuple) else [result]

    def evaluate(params: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """(images, objectives, peaks, structure) of parameters: the
        images, every unit's objective and peak on them (N, U), and each
        image's structure (N,)."""
        space = spec.param.space
        x = spec.param.to_x(params)
        images = tf.clip_by_value(x + space.mean_array, space.low, space.high)
        post = outputs(images)[0]
        return (
            images,
            layer_objectives(post, spec.kind, spec.objective),
            layer_peaks(post, spec.kind),
            _structure(images - space.mean_array, space.scale),
        )

    return _Program(build_ascent(outputs, spec, compiled), evaluate)


def _compile(plain: _Program, spec: Spec) -> _Program:
    """Wrap both functions in tf.function with fixed signatures."""
    batch = spec.size * spec.views.per_unit
    params = tf.TensorSpec((batch, *spec.param.shape), tf.float32)
    per_sample = [
        tf.TensorSpec((batch,), tf.int32),
        tf.TensorSpec((batch,), tf.int64),
        tf.TensorSpec((batch,), tf.float32),
    ]
    scalar = tf.TensorSpec((), tf.int32)
    signature = [params, *per_sample, scalar, scalar]
    return _Program(
        tf.function(_own(plain.ascend), input_signature=signature),
        tf.function(_own(plain.evaluate), input_signature=[params]),
    )


def _own(function: Callable) -> Callable:
    """`function` behind a partial: tf.function then counts its calls on
    their own, not with every program's (which share one code object), and
    warns of retracing only when this program really retraces."""
    return functools.partial(function)


def _run_chunk(
    program: _Program, spec: Spec, units: np.ndarray, seed: int, steps: int
) -> list[tuple[np.ndarray, ...]]:
    """Optimize one chunk; per view: (images, start, final, layer_max, peak)."""
    padded = units[np.arange(spec.size) % len(units)]
    tiled, keys, signs = spec.views.layout(padded)
    start = spec.param.start(keys.tolist(), seed)
    final = program.ascend(
        tf.constant(start),
        tf.constant(tiled),
        tf.constant(keys),
        tf.constant(signs),
        tf.constant(steps),
        tf.constant(seed),
    )
    before = _measure(program, start, tiled)
    after = _measure(program, final, tiled)
    n = len(units)
    return [
        (after[0][v : v + n], before[1][v : v + n], *(a[v : v + n] for a in after[1:]))
        for v in range(0, len(tiled), spec.size)
    ]


def _measure(program: _Program, params, units: np.ndarray) -> tuple:
    """(images, objective, layer_max, peak, structure) per sample."""
    images, values, peaks, structure = (
        v.numpy() for v in program.evaluate(tf.constant(params))
    )
    rows = np.arange(len(units))
    own = values[rows, units]
    return images, own, own >= values.max(axis=1), peaks[rows, units], structure


def _structure(deviation: tf.Tensor, scale: float) -> tf.Tensor:
    """(N,) standard deviation of each blurred deviation, in 0-255 levels.

    The blur (sigma STRUCTURE_BLUR_SIGMA) removes pixel noise, so only
    shapes of at least a few pixels count as structure.
    """
    smooth = regularizers.blur(deviation, STRUCTURE_BLUR_SIGMA)
    return tf.math.reduce_std(smooth, axis=(1, 2, 3)) / scale


def _assemble(preset: str, view: str, units: np.ndarray, parts: list) -> Synthesis:
    """Join the chunks' results for one view into one record."""
    columns = zip(*parts, strict=True)
    images, start, final, layer_max, peak, structure = (
        np.concatenate(c) for c in columns
    )
    return Synthesis(
        preset,
        units,
        images,
        start,
        final,
        layer_max,
        peak,
        structure,
        view="" if view == preset else view,
    )


def _check_input(layer_model: keras.Model) -> None:
    """The model must take (N, H, W, C) images."""
    shape = tuple(layer_model.inputs[0].shape)
    if len(shape) != 4:
        raise ModelError(
            f"model input has shape {shape}; ascent needs images of shape "
            "(batch, height, width, channels). Sequences (Conv1D, rank 3) and "
            "videos (ConvLSTM2D, rank 5) cannot be visualized as images."
        )


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
