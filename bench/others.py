"""Other feature-visualization tools, timed as their documentation shows
them used. Each factory returns a timing function, or None when its tool
is not installed or cannot run with Keras 3 here."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# tf-keras-vis runs one unit per call, eagerly: a few units stand for all.
TF_KERAS_VIS_UNITS = 4


def xplique_method(case, steps: int, chunk: int) -> Callable | None:
    """xplique's batched `optimize`: one objective per unit of a chunk."""
    try:
        from xplique.features_visualizations import Objective, optimize
    except Exception as error:  # any import failure: not usable here
        logger.warning("xplique unavailable: %s", error)
        return None

    height, width = case.canvas[:2]

    def run(warm: bool) -> float:
        units = case.units[:chunk] if warm else case.units
        began = time.perf_counter()
        for first in range(0, len(units), chunk):
            part = list(units[first : first + chunk])
            objective = Objective.channel(case.model, case.layer, part)
            optimize(
                objective,
                nb_steps=1 if warm else steps,
                values_range=case.input_range,
                custom_shape=(height, width),
            )
        return time.perf_counter() - began

    return _checked("xplique", run)


def tf_keras_vis_method(case, steps: int, chunk: int) -> Callable | None:
    """tf-keras-vis's ActivationMaximization, one unit per call."""
    try:
        from tf_keras_vis.activation_maximization import ActivationMaximization
        from tf_keras_vis.utils.model_modifiers import ExtractIntermediateLayer
        from tf_keras_vis.utils.scores import CategoricalScore
    except Exception as error:  # any import failure: not usable here
        logger.warning("tf-keras-vis unavailable: %s", error)
        return None

    maximize = ActivationMaximization(
        case.model,
        model_modifier=[ExtractIntermediateLayer(index_or_name=case.layer)],
        clone=True,
    )
    timed = case.units[:TF_KERAS_VIS_UNITS]

    def run(warm: bool) -> float:
        began = time.perf_counter()
        for unit in timed[:1] if warm else timed:
            maximize(
                CategoricalScore(unit),
                steps=1 if warm else steps,
                input_range=case.input_range,
            )
        # Scaled to every unit of the case, which the caller divides by.
        return (time.perf_counter() - began) * len(case.units) / len(timed)

    return _checked("tf-keras-vis", run)


def _checked(name: str, run: Callable) -> Callable | None:
    """`run` if one warm-up call works, else None (reported)."""
    try:
        run(warm=True)
    except Exception as error:  # their failures are data here
        logger.warning("%s cannot run here: %s: %s", name, type(error).__name__, error)
        return None
    return run
