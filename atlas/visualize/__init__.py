"""Feature visualization by regularized activation maximization, batched.

`synthesize` optimizes one image per unit of a layer under a `Preset`;
`synthesize_views` adds the negative and diversity views. `PRESETS` holds
the paper's four settings (Yosinski et al. 2015), two simpler ones and a
Fourier one (Olah et al. 2017).
"""

from __future__ import annotations

import importlib

from atlas.visualize.presets import PRESETS, Preset, preset_named

# Imported on first use: reading a config (presets) must not start
# TensorFlow, which takes seconds (e.g. for `atlas serve`).
_LAZY = {
    "synthesize": "atlas.visualize.ascent",
    "synthesize_views": "atlas.visualize.ascent",
    "tracing_count": "atlas.visualize.ascent",
    "ViewSet": "atlas.visualize.views",
    "chunk_size": "atlas.visualize.views",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "PRESETS",
    "Preset",
    "ViewSet",
    "chunk_size",
    "preset_named",
    "synthesize",
    "synthesize_views",
    "tracing_count",
]
