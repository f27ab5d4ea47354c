"""Ascent settings: the `Preset` record and the presets the atlas offers.

Step sizes of the paper's presets are given, as in Yosinski et al. (2015),
for mean-subtracted 0-255 pixels (see `updates.displacement`); the Fourier
preset follows Olah et al. (2017): a decorrelated spectrum, Adam, and
random pad, jitter, scale and rotation every step.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from atlas.errors import ConfigError

# The deep-visualization toolbox's "progress" policy aims each step at this
# rise of the objective, in the objective's own units (its default).
DESIRED_PROGRESS = 2.0
STEP_POLICIES = ("constant", "progress", "adam")
PARAMETERIZATIONS = ("pixels", "fourier")


@dataclass(frozen=True)
class Preset:
    """One setting of the regularized ascent; 0 switches a regularizer off.

    `lr` is the step for the "constant" policy and the largest step for the
    "progress" policy, for mean-subtracted 0-255 pixels; for "adam" it is
    Adam's step in parameter units (0-255 levels for pixels, logit units
    for a Fourier spectrum). The transforms run in the order pad, jitter,
    scale and rotate, and the image is cropped back to its canvas.
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
    pad: int = 0  # pixels of the centre colour added around the image
    scale: tuple[float, float] = (1.0, 1.0)  # random magnification range
    rotate: float = 0.0  # random rotation, up to this many degrees each way
    param: str = "pixels"  # "pixels" or "fourier"
    decorrelate: bool = False  # mix colours by the data's covariance

    def __post_init__(self) -> None:
        problems = self._problems() + self._transform_problems()
        problems += self._fourier_problems()
        if problems:
            raise ConfigError(f"preset {self.name!r}: " + "; ".join(problems))

    @property
    def blurs(self) -> bool:
        return self.blur_sigma > 0 and self.blur_every > 0

    @property
    def transforms(self) -> bool:
        """Whether any random transform is on."""
        moves = self.scale != (1.0, 1.0) or self.rotate > 0
        return moves or self.jitter > 0 or self.pad > 0

    def _problems(self) -> list[str]:
        """Every invalid field of the ascent itself, as readable phrases."""
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
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        return problems

    def _transform_problems(self) -> list[str]:
        problems = []
        for key in ("jitter", "pad"):
            if getattr(self, key) < 0:
                problems.append(f"{key} must be >= 0 pixels, got {getattr(self, key)}")
        low, high = self.scale
        if not 0 < low <= high:
            problems.append(f"scale must be (low, high), 0 < low <= high: {self.scale}")
        if not 0 <= self.rotate <= 180:
            problems.append(f"rotate must be in [0, 180] degrees, got {self.rotate}")
        return problems

    def _fourier_problems(self) -> list[str]:
        if self.param not in PARAMETERIZATIONS:
            expected = " or ".join(PARAMETERIZATIONS)
            return [f"param must be {expected}, got {self.param!r}"]
        if self.param == "pixels":
            if self.decorrelate:
                return ["decorrelate needs param 'fourier'"]
            return []
        problems = []
        if self.step_policy != "adam":
            problems.append("param 'fourier' needs step_policy 'adam'")
        pixel_only = ("blur_sigma", "norm_percentile", "contribution_percentile")
        for key in pixel_only:
            if getattr(self, key) > 0:
                problems.append(f"{key} acts on pixels; set it to 0 for 'fourier'")
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
        # Olah et al. (2017): a frequency-scaled, colour-decorrelated
        # spectrum, Adam, and random pad, jitter and scale every step. Ours:
        # an L2 decay of the spectrum, which keeps parts the unit does not
        # need at the mean image (on the digits example it cut the distance
        # to real digits by half); rotation left off, see README.
        Preset(
            "fourier",
            steps=256,
            decay=0.03,
            step_policy="adam",
            lr=0.05,
            pad=2,
            jitter=3,
            scale=(0.8, 1.2),
            param="fourier",
            decorrelate=True,
        ),
        # Plain ascent: the paper's unregularized, "fooling" images.
        Preset("none", steps=200, lr=100),
        # Weak L2 decay alone, the prior of Simonyan et al. (2013).
        Preset("l2", steps=200, decay=1e-3, lr=100),
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
