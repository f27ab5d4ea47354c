"""Regularized activation maximization (Yosinski et al. 2015), batched.

`synthesize` optimizes one image per unit of a layer under a `Preset`;
`PRESETS` holds the paper's four settings and two simpler ones.
"""

from __future__ import annotations

from atlas.visualize.ascent import synthesize, tracing_count
from atlas.visualize.presets import PRESETS, Preset, preset_named

__all__ = ["PRESETS", "Preset", "preset_named", "synthesize", "tracing_count"]
