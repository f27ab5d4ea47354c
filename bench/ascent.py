"""Speed of the ascent: seconds per unit, ours against a floor and others.

For a mid layer of MobileNetV2 (weights=None, 128 x 128) and for the digits
example, with the same steps for every method:

- floor: a bare compiled forward + backward + update loop over the same
  batches of units, with no regularizer, transform or parameterization;
- ours under the "fourier" and "yosinski-3" presets, every regularizer and
  transform of each on;
- tf-keras-vis's ActivationMaximization, one unit at a time, and xplique's
  batched `optimize`, when they are installed (nan otherwise).

Methods run in alternating rounds and each figure is the median of its
rounds, since the machine may be shared. The last line gives the
MobileNetV2 figures: ours (the slower preset) over the floor, and how many
times faster ours is than each other tool.

    python bench/ascent.py [--rounds 3] [--steps 64] [--units 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MOBILENET_LAYER = "block_6_expand_relu"
MOBILENET_SHAPE = (128, 128, 3)
DIGITS_LAYER = "fc"
OUR_PRESETS = ("fourier", "yosinski-3")
# The floor's step: small, since only its time matters.
FLOOR_LR = 1e-3
NAN = float("nan")


@dataclass(frozen=True)
class Case:
    """One model and layer to time, and the units to time it on."""

    name: str
    model: object
    layer: str
    units: list[int]
    canvas: tuple[int, int, int]
    input_range: tuple[float, float]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.path.insert(0, str(ROOT))  # run from a clone, installed or not
    figures = {}
    for case in (_mobilenet(args.units), _digits()):
        figures[case.name] = _time_case(case, args.steps, args.rounds, args.memory_mb)
        print(_table(case, figures[case.name], args.steps))
    print(_last_line(figures["mobilenet_v2"]))
    return 0


def _time_case(case: Case, steps: int, rounds: int, memory_mb: float) -> dict:
    """Median seconds per unit of every method on one case, wall clock and
    (for the floor and ours, which run in this process alone) CPU time."""
    methods = _methods(case, steps, memory_mb)
    for method in methods.values():
        method(warm=True)
    wall: dict[str, list[float]] = {name: [] for name in methods}
    cpu: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(rounds):
        for name, method in methods.items():
            began = time.process_time()
            wall[name].append(method(warm=False))
            cpu[name].append(time.process_time() - began)
    count = len(case.units)
    return {
        name: (
            statistics.median(wall[name]) / count,
            statistics.median(cpu[name]) / count,
        )
        for name in methods
    }


def _methods(case: Case, steps: int, memory_mb: float) -> dict[str, Callable]:
    from bench.others import tf_keras_vis_method, xplique_method

    chunk = _chunk(case, memory_mb)
    methods = {"floor": _floor_method(case, steps, chunk)}
    for preset in OUR_PRESETS:
        methods[preset] = _our_method(case, preset, steps, chunk)
    for name, make in (
        ("xplique", xplique_method),
        ("tf-keras-vis", tf_keras_vis_method),
    ):
        method = make(case, steps, chunk)
        if method is not None:
            methods[name] = method
    return methods


def _chunk(case: Case, memory_mb: float) -> int:
    from atlas.model import ascent_model, describe_layers, select_layers
    from atlas.visualize import chunk_size

    info = select_layers(describe_layers(case.model), [case.layer])[0]
    layer_model = ascent_model(case.model, info)
    return chunk_size(layer_model, case.canvas, 1, memory_mb, len(case.units))


def _our_method(case: Case, preset: str, steps: int, chunk: int) -> Callable:
    from atlas.model import ascent_model, describe_layers, select_layers
    from atlas.visualize import PRESETS, synthesize

    info = select_layers(describe_layers(case.model), [case.layer])[0]
    layer_model = ascent_model(case.model, info)

    def run(warm: bool) -> float:
        began = time.perf_counter()
        synthesize(
            layer_model,
            info,
            case.units[:chunk] if warm else case.units,
            PRESETS[preset],
            canvas=case.canvas,
            input_range=case.input_range,
            steps=1 if warm else steps,
            chunk=chunk,
        )
        return time.perf_counter() - began

    return run


def _floor_method(case: Case, steps: int, chunk: int) -> Callable:
    """The bare loop: one compiled function per chunk shape, no extras."""
    import keras
    import tensorflow as tf

    layer_model = keras.Model(
        case.model.inputs[0], case.model.get_layer(case.layer).output
    )
    signature = [
        tf.TensorSpec((chunk, *case.canvas), tf.float32),
        tf.TensorSpec((chunk,), tf.int32),
        tf.TensorSpec((), tf.int32),
    ]

    @tf.function(input_signature=signature)
    def loop(x, units, count):
        for _ in tf.range(count):
            with tf.GradientTape() as tape:
                tape.watch(x)
                output = tf.cast(layer_model(x, training=False), tf.float32)
                if output.shape.rank == 4:
                    output = tf.reduce_mean(output, axis=(1, 2))
                objective = tf.gather(output, units, axis=1, batch_dims=1)
            x = x + FLOOR_LR * tape.gradient(objective, x)
        return x

    def run(warm: bool) -> float:
        units = np.asarray(case.units[:chunk] if warm else case.units)
        began = time.perf_counter()
        for first in range(0, len(units), chunk):
            part = units[first : first + chunk]
            part = part[np.arange(chunk) % len(part)].astype(np.int32)
            x = tf.random.stateless_normal((chunk, *case.canvas), seed=[0, first])
            loop(x, tf.constant(part), tf.constant(1 if warm else steps)).numpy()
        return time.perf_counter() - began

    return run


def _mobilenet(units: int) -> Case:
    import keras

    model = keras.applications.MobileNetV2(weights=None, input_shape=MOBILENET_SHAPE)
    return Case(
        "mobilenet_v2",
        model,
        MOBILENET_LAYER,
        list(range(units)),
        MOBILENET_SHAPE,
        (-1.0, 1.0),
    )


def _digits() -> Case:
    import keras

    path = ROOT / "examples" / "digits" / "model.keras"
    model = keras.saving.load_model(path, compile=False)
    return Case("digits", model, DIGITS_LAYER, list(range(64)), (32, 32, 1), (0, 1))


def _table(case: Case, figures: dict, steps: int) -> str:
    floor_wall, floor_cpu = figures["floor"]
    lines = [
        f"{case.name} {case.layer}: {len(case.units)} units, {steps} steps",
        f"  {'method':14} {'s/unit':>8} {'x floor':>8} {'cpu x floor':>12}",
    ]
    for name, (wall, cpu) in figures.items():
        ratio = f"{cpu / floor_cpu:12.2f}" if name in ("floor", *OUR_PRESETS) else ""
        lines.append(f"  {name:14} {wall:8.3f} {wall / floor_wall:8.2f} {ratio}")
    return "\n".join(lines)


def _last_line(figures: dict) -> str:
    wall = {name: values[0] for name, values in figures.items()}
    ours = max(wall[preset] for preset in OUR_PRESETS)
    xplique = wall.get("xplique", NAN)
    keras_vis = wall.get("tf-keras-vis", NAN)
    return (
        f"ascent ratio_to_floor={ours / wall['floor']:.3f} "
        f"speedup_vs_xplique={xplique / ours:.3f} "
        f"speedup_vs_tf_keras_vis={keras_vis / ours:.3f}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--units", type=int, default=16, help="MobileNetV2 units")
    parser.add_argument("--memory-mb", type=float, default=1024.0)
    return parser


if __name__ == "__main__":
    raise SystemExit(main())
