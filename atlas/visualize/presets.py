"""Ascent settings: the `Preset` record, the paper's presets and step sizes.

Step sizes are given, as in Yosinski et al. (2015), for mean-subtracted
0-255 pixels; `displacement` turns them into a step in the model's own pixel
range, with the gradient's magnitude normalized so they fit any model.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import tensorflow as tf

from atlas.errors import ConfigError

# The deep-visualization toolbox's "progress" policy aims each step at this
# rise of the objective, in the objective's own units (its default).
DESIRED_PROGRESS = 2.0
# Keeps steps finite for a zero gradient (a dead unit), which then stays put.
GRADIENT_EPS = 1e-20
# Gradient RMS, per 0-255 level, that a preset's step size is taken to act
# on: at lr 100 pixels move 100 * 0.04 = 4 levels RMS per step. Measured on
# the digits example: the paper's literal yosinski-3 step moved its pixels
# by about 0.04 levels per step, too little to leave the start noise in
# 1000 steps, and 100x that gave clean, recognizable digits.
REFERENCE_GRADIENT_RMS = 0.04
STEP_POLICIES = ("constant", "progress")


@dataclass(frozen=True)
class Preset:
    """One setting of the regularized ascent; 0 switches a regularizer off.

    `lr` is the step for the "constant" policy and the largest step for the
    "progress" policy, for mean-subtracted 0-255 pixels.
    """

    name: str
    steps: int
    decay: float = 0.0
    blur_sigma: float = 0.0
    blur_every: int = 0
    norm_percentile: float = 0.0
    contribution_percentile: float = 0.0
    step_policy: str = "constant"
    lr: float = 100.0
    desired_progress: float = DESIRED_PROGRESS
    jitter: int = 0  # pixels each sample may shift per axis, every step

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ConfigError(f"preset {self.name!r}: " + "; ".join(problems))

    @property
    def blurs(self) -> bool:
        return self.blur_sigma > 0 and self.blur_every > 0

    def _problems(self) -> list[str]:
        """Every invalid field, as readable phrases."""
        problems = []
        if self.steps < 0:
            problems.append(f"steps must be >= 0, got {self.steps}")
        if not 0 <= self.decay < 1:
            problems.append(f"decay must be in [0, 1), got {self.decay}")
        for key in ("norm_percentile", "contribution_percentile"):
            value = getattr(self, key)
            if not 0 <= value <= 100:
                problems.append(f"{key} must be in [0, 100], got {value}")
        if self.step_policy not in STEP_POLICIES:
            expected = " or ".join(STEP_POLICIES)
            problems.append(f"step_policy must be {expected}, got {self.step_policy!r}")
        if self.jitter < 0:
            problems.append(f"jitter must be >= 0 pixels, got {self.jitter}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        return problems


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        # The four rows of Yosinski et al. (2015), Table 1 / Figure 3.
        Preset(
            "yosinski-1",
            steps=500,
            blur_sigma=0.5,
            blur_every=4,
            norm_percentile=50,
            step_policy="progress",
            lr=100,
        ),
        Preset("yosinski-2", steps=750, decay=0.3, norm_percentile=20, lr=100),
        Preset(
            "yosinski-3", steps=1000, decay=1e-4, blur_sigma=1.0, blur_every=4, lr=100
        ),
        Preset(
            "yosinski-4",
            steps=1000,
            blur_sigma=0.5,
            blur_every=4,
            contribution_percentile=90,
            step_policy="progress",
            lr=1e8,
        ),
        # Ours: yosinski-3 whose image shifts up to 3 px at random every
        # step (Mordvintsev et al. 2015's jitter), so that no single pixel
        # pattern can carry the unit; the atlas's default.
        Preset(
            "yosinski-3-jitter",
            steps=1000,
            decay=1e-4,
            blur_sigma=1.0,
            blur_every=4,
            lr=100,
            jitter=3,
        ),
        # Plain ascent: the paper's unregularized, "fooling" images.
        Preset("none", steps=500, lr=100),
        # Weak L2 decay alone, the prior of Simonyan et al. (2013).
        Preset("l2", steps=500, decay=1e-3, lr=100),
    )
}


def preset_named(name: str) -> Preset:
    """The preset called `name`; a ConfigError with a suggestion if unknown."""
    if name in PRESETS:
        return PRESETS[name]
    close = difflib.get_close_matches(name, PRESETS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    known = ", ".join(PRESETS)
    raise ConfigError(f"unknown preset {name!r}; expected one of {known}.{hint}")


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
    rms = tf.sqrt(tf.reduce_mean(tf.square(grad), axis=(1, 2, 3), keepdims=True))
    largest = preset.lr * REFERENCE_GRADIENT_RMS * scale / (rms + GRADIENT_EPS)
    if preset.step_policy == "constant":
        return largest * grad

    squared = tf.reduce_sum(tf.square(grad), axis=(1, 2, 3), keepdims=True)
    progress = preset.desired_progress / (squared + GRADIENT_EPS)
    return tf.minimum(largest, progress) * grad
