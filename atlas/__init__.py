"""Neuron Atlas: a static site generator for neuron atlases of Keras models."""

from __future__ import annotations

__version__ = "0.1.0"


def build(settings):
    """Build the atlas `settings` describe; see `atlas.pipeline.build`."""
    from atlas.pipeline import build as _build

    return _build(settings)
