"""Checking that the canvas (visualize.size) is large enough for a model
before any work: a too-small canvas otherwise fails deep inside the
compiled ascent step."""

from __future__ import annotations

import weakref

import keras
import numpy as np
import tensorflow as tf

from atlas.errors import ConfigError

# The largest square side the search for the smallest canvas tries.
LARGEST_SIDE = 4096

# Canvases already run through each model; weak keys let a dropped model go.
_CHECKED: weakref.WeakKeyDictionary[keras.Model, set] = weakref.WeakKeyDictionary()


def check_canvas(model: keras.Model, canvas: tuple[int, int, int], what: str) -> None:
    """Raise a ConfigError unless `model` gives non-empty outputs on a zero
    image of `canvas` (height, width, channels); `what` names the layers."""
    canvas = tuple(int(v) for v in canvas)
    done = _CHECKED.setdefault(model, set())
    if canvas in done:
        return
    if not _runs(model, canvas) and not _fits(model, *canvas):
        raise ConfigError(_too_small(model, canvas, what))
    done.add(canvas)


def _runs(model: keras.Model, canvas: tuple[int, int, int]) -> bool:
    """Whether one zero image of `canvas` gives outputs with no empty axis."""
    try:
        outputs = model(np.zeros((1, *canvas), np.float32), training=False)
    except (ValueError, tf.errors.OpError):
        return False
    return all(min(out.shape) > 0 for out in tf.nest.flatten(outputs))


def _fits(model: keras.Model, height: int, width: int, channels: int) -> bool:
    """Whether a canvas gives non-empty outputs, from shapes alone (no
    computation): a run that fails on a canvas that fits by shape fails
    for another reason, which the ascent itself reports."""
    try:
        image = keras.KerasTensor((1, height, width, channels))
        spec = model.compute_output_spec(image)
    except ValueError:
        return False
    return all(min(out.shape) > 0 for out in tf.nest.flatten(spec))


def smallest_side(model: keras.Model, low: int, channels: int) -> int | None:
    """The smallest square side above `low` that fits, or None up to
    LARGEST_SIDE. Output sizes grow with the input, so it bisects."""
    high = LARGEST_SIDE
    if not _fits(model, high, high, channels):
        return None
    while high - low > 1:
        middle = (low + high) // 2
        if _fits(model, middle, middle, channels):
            high = middle
        else:
            low = middle
    return high


def _too_small(model: keras.Model, canvas: tuple[int, int, int], what: str) -> str:
    height, width, channels = canvas
    side = smallest_side(model, min(height, width), channels)
    if side is None:
        fix = "set visualize.size to a larger size the model accepts"
    else:
        fix = f"set visualize.size to at least [{side}, {side}]"
    return (
        f"visualize.size = [{height}, {width}] is too small for {what}: the "
        f"model's output on a {height}x{width} canvas is empty or cannot be "
        f"computed. Expected a canvas the model can shrink to at least one "
        f"position; {fix}."
    )
