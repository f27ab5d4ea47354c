"""One unit's deconvnet, guided-backprop or gradient map on the probe's
current input, drawn by `atlas.attribute` exactly as the atlas draws its
heatmaps, with one compiled attributor per (layer, method) kept warm."""

from __future__ import annotations

import logging

import keras
import numpy as np

from atlas.attribute import METHODS as ATTRIBUTE_METHODS
from atlas.attribute import Attributor, heatmap
from atlas.errors import ModelError
from atlas.records import Box, LayerInfo

# Offered in this order; the probe shows the first by default, as the Deep
# Visualization Toolbox does.
METHODS = ("deconvnet", "guided", "gradient")

logger = logging.getLogger(__name__)


class UnitMaps:
    """Attribution maps of single units, compiled once per layer and method.

    Not thread-safe: the server calls it from its one model thread.
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self._attributors: dict[tuple[str, str], Attributor] = {}

    def map(
        self,
        info: LayerInfo,
        unit: int,
        position: tuple[int, int] | None,
        image: np.ndarray,
        method: str,
    ) -> np.ndarray:
        """(H, W) uint8 magnitude of `unit`'s input gradient at `position`
        (None for dense layers) on one float `image`, 255 at its peak."""
        attributor = self._attributor(info, method)
        where = np.asarray([position or (0, 0)], np.int32)
        gradients = attributor(image[None], [unit], where)[0]
        height, width = gradients.shape[:2]
        return heatmap(gradients, Box(0, 0, height, width))

    def _attributor(self, info: LayerInfo, method: str) -> Attributor:
        if method not in METHODS or method not in ATTRIBUTE_METHODS:
            raise ModelError(
                f"attribution method {method!r} is unknown; use one of "
                f"{', '.join(METHODS)}."
            )
        key = (info.name, method)
        if key not in self._attributors:
            logger.debug("compiling the %s attribution of %s", method, info.name)
            self._attributors[key] = Attributor(self.model, info, method)
        return self._attributors[key]
