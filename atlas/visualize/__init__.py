"""Feature visualization by regularized activation maximization, batched.

`synthesize` optimizes one image per unit of a layer under a `Preset`;
`synthesize_views` adds the negative and diversity views. `PRESETS` holds
the paper's four settings (Yosinski et al. 2015), two simpler ones and a
Fourier one (Olah et al. 2017).
"""

from __future__ import annotations

from atlas.visualize.ascent import synthesize, synthesize_views, tracing_count
from atlas.visualize.presets import PRESETS, Preset, preset_named
from atlas.visualize.views import ViewSet, chunk_size

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
