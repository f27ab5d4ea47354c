"""Loading a model: a `.keras`/`.h5` file or a `keras.applications` name,
with the user's custom layers, checked before any work starts.

Every way a load can fail ends in one `ModelError` that names the file,
the layer or the setting at fault and says what to do.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from atlas import preprocess as conventions
from atlas.channels import to_channels_last
from atlas.errors import ModelError
from atlas.graph import flatten
from atlas.saved import (
    load_failure,
    saved_config,
    savedmodel_message,
    tensorflow_functions,
)

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
# Keras 2 wrote arguments that Keras 3 layers no longer take.
logger = logging.getLogger(__name__)


def load_model(
    path: Path | None,
    input_shape: Sequence[int] | None = None,
    *,
    application: str | None = None,
    weights: str | None = "imagenet",
    custom_module: str | None = None,
    safe_mode: bool = True,
    preprocess: str = "auto",
    input_range: Sequence[float] | None = None,
) -> keras.Model:
    """The model a config names, built, checked and flattened, behind the
    pixel convention it was trained on (see atlas.preprocess)."""
    objects = custom_objects(custom_module)
    builder = _builder(application) if application else None
    convention = conventions.resolve(preprocess, builder)
    if builder is not None:
        model = _application(builder, weights, input_shape)
    else:
        model = _from_file(path, objects, safe_mode)
    _ensure_built(model, input_shape)
    model = to_channels_last(flatten(model))
    check_model(model)
    front = _front(model, convention, input_range, preprocess)
    return model if front is None else flatten(model, front)


def custom_objects(module_name: str | None) -> dict[str, object]:
    """Layers, functions and objects a user's module defines, by name.

    The module is imported as a normal module (the config folder is on
    the import path); its `custom_objects` dict, if any, is used as is.
    """
    if not module_name:
        return {}
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ModelError(
            f"model.custom_module {module_name!r} cannot be imported: "
            f"{type(exc).__name__}: {exc}. Put {module_name}.py beside the "
            "config file (or on PYTHONPATH) and fix the error in it."
        ) from exc
    declared = getattr(module, "custom_objects", None)
    if isinstance(declared, dict):
        return dict(declared)
    return {
        name: value
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module.__name__
    }


def check_model(model: keras.Model) -> None:
    """Refuse, before any work, a model the atlas cannot read correctly."""
    images = [t for t in model.inputs if len(t.shape) == 4]
    if len(model.inputs) > 1:
        names = [getattr(t, "name", "?") for t in model.inputs]
        # LIMITATION: models with several inputs are refused, even when
        # only one of them is an image.
        raise ModelError(
            f"model {model.name!r} has {len(model.inputs)} inputs {names}; the "
            "atlas optimizes and feeds one image input. Build a model of the "
            "image branch alone (keras.Model(image_input, layer.output)) and "
            "save that."
        )
    if not images:
        shape = tuple(model.inputs[0].shape)
        raise ModelError(
            f"model {model.name!r} takes inputs of shape {shape} (rank "
            f"{len(shape)}); the atlas needs images, rank 4 (batch, height, "
            "width, channels). Sequences (Conv1D) and videos (ConvLSTM2D) "
            "are not supported."
        )
    _check_finite(model)


def _from_file(path: Path | None, objects: dict, safe_mode: bool) -> keras.Model:
    if path is None:
        raise ModelError(
            "no model given: set model.path to a .keras or .h5 file, or "
            "model.application to a keras.applications name."
        )
    path = Path(path)
    if path.is_dir():
        raise ModelError(savedmodel_message(path))
    if not path.is_file():
        raise ModelError(
            f"model file not found: '{path}'. Set model.path in the config to "
            f"a .keras or .h5 file (relative to the config file)."
        )
    if path.suffix not in MODEL_SUFFIXES:
        raise ModelError(
            f"model.path '{path}' is not a .keras or .h5 file; save the model "
            f"with model.save('model.keras') and point model.path at it."
        )
    if path.suffix == ".keras" and not zipfile.is_zipfile(path):
        raise ModelError(
            f"'{path}' is not a Keras archive (a .keras file is a zip written "
            "by model.save('model.keras')); it may be truncated or another "
            "kind of file. Save the model again and point model.path at it."
        )
    config = saved_config(path)
    objects = {**tensorflow_functions(config), **objects}
    try:
        return keras.saving.load_model(
            path, compile=False, custom_objects=objects, safe_mode=safe_mode
        )
    except Exception as exc:  # Keras raises many types for a bad file
        raise ModelError(load_failure(path, exc, config, set(objects))) from exc


def _builder(name: str):
    """The `keras.applications` builder called `name`, e.g. "MobileNetV2"."""
    builders = {
        n: f
        for n, f in vars(keras.applications).items()
        if callable(f) and n[:1].isupper()
    }
    if name not in builders:
        close = difflib.get_close_matches(name, builders, n=3)
        hint = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
        raise ModelError(
            f"model.application {name!r} is not in keras.applications{hint}; "
            "use a name like 'MobileNetV2', 'ResNet50' or 'VGG16'."
        )
    return builders[name]


def _application(builder, weights: str | None, input_shape) -> keras.Model:
    """The model `builder` makes with `weights` at `input_shape`."""
    name = builder.__name__
    options = {"weights": weights}
    if input_shape is not None:
        options["input_shape"] = tuple(int(d) for d in input_shape)
    try:
        return builder(**options)
    except Exception as exc:
        raise ModelError(
            f"cannot build keras.applications.{name} with weights={weights!r}"
            f" and model.input_shape={options.get('input_shape')}: {exc}. "
            "ImageNet weights need the network once (they are cached in "
            '~/.keras/models); set model.weights = "none" for random ones.'
        ) from exc


def _front(model: keras.Model, convention: str, input_range, asked: str):
    """The PixelConvention layer for `convention`, or None for "none"."""
    if convention == "none":
        hint = conventions.looks_like_application(model.name)
        if asked == "auto" and hint and not conventions.scales_itself(model):
            logger.warning(
                "model %r looks like keras.applications.%s, which is trained on "
                "its own pixel convention; if so, set model.preprocess (caffe, "
                "tf or torch) so that it gets the input it was trained on",
                model.name,
                hint,
            )
        return None
    own = conventions.scales_itself(model)
    if own is not None:
        logger.warning(
            "model %r starts with %s %r and model.preprocess is %r: pixels "
            "would be scaled twice unless the model was trained that way; set "
            'model.preprocess = "none" if the model scales its own input',
            model.name,
            type(own).__name__,
            own.name,
            convention,
        )
    low_high = conventions.APPLICATION_RANGE if input_range is None else input_range
    channels = model.inputs[0].shape[-1]
    if channels != 3:
        raise ModelError(
            f"model.preprocess {convention!r} is for RGB models, but model "
            f"{model.name!r} takes {channels} channel(s); set model.preprocess "
            '= "none" and model.input_range to the range it was trained on.'
        )
    logger.info(
        "model input: %s, from RGB pixels in %s",
        conventions.CONVENTIONS[convention].summary,
        list(low_high),
    )
    return conventions.PixelConvention(
        convention, low_high, name=f"atlas_{convention}_pixels"
    )


def _ensure_built(model: keras.Model, input_shape: Sequence[int] | None) -> None:
    try:
        model.inputs[0]
        return
    except (AttributeError, IndexError, TypeError, ValueError):
        pass
    if input_shape is None:
        raise ModelError(
            f"model '{model.name}' was never built, so its input shape is "
            f"unknown; set model.input_shape = [height, width, channels]."
        )
    try:
        model.build((None, *input_shape))
        model.inputs[0]
    except Exception as exc:
        raise ModelError(
            f"model '{model.name}' could not be built for model.input_shape "
            f"{list(input_shape)}: {exc}"
        ) from exc


def _check_finite(model: keras.Model) -> None:
    bad = [
        weight.path
        for weight in model.weights
        if not np.isfinite(np.asarray(weight.numpy(), np.float64)).all()
    ]
    if bad:
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        shown = ", ".join(bad[:5]) + more
        raise ModelError(
            f"model {model.name!r} has NaN or infinite weights in {shown}; "
            "every image and activation would be NaN. Load a checkpoint from "
            "before training diverged."
        )


def add_import_root(folder: Path) -> None:
    """Let model.custom_module name a module beside the config file."""
    text = str(folder)
    if text not in sys.path:
        sys.path.insert(0, text)


def open_model(source, root: Path) -> keras.Model:
    """The model that `[model]` settings (`source`) describe."""
    if source.custom_module:
        add_import_root(root)
    return load_model(
        source.path,
        source.input_shape,
        application=source.application,
        weights=source.weights,
        custom_module=source.custom_module,
        safe_mode=source.safe_mode,
        preprocess=source.preprocess,
        input_range=source.input_range,
    )


def pixel_convention(model: keras.Model) -> str:
    """The convention the model's PixelConvention layer applies, or "none"."""
    front = conventions.convention_layer(model)
    return "none" if front is None else front.convention


def input_text(model: keras.Model, input_range) -> str:
    """What the model is fed, in words, for the atlas's pages."""
    convention = pixel_convention(model)
    if convention != "none":
        return conventions.CONVENTIONS[convention].summary
    low, high = (f"{float(bound):g}" for bound in input_range)
    own = conventions.scales_itself(model)
    if own is not None:
        return f"pixels in [{low}, {high}]; the model's {own.name!r} scales them"
    return f"pixels in [{low}, {high}], as they are (no convention)"


def infer_input_range(model: keras.Model) -> tuple[float, float]:
    """The pixel range a model takes, when the config does not say.

    A model whose input meets a Rescaling first (behind augmentation or
    Resizing, say) takes raw 0-255 pixels and scales them itself (C08):
    feeding it [0, 1] would scale twice; so does one that normalizes with a
    mean above 1. Otherwise [0, 1], the usual convention of models trained
    on scaled images.
    """
    front = conventions.convention_layer(model)
    if front is not None:
        return front.input_range
    own = conventions.scales_itself(model)
    if isinstance(own, keras.layers.Rescaling) or _normalizes_raw_pixels(own):
        logger.info(
            "the model's input meets %s %r first: it takes raw pixels, "
            "input_range [0, 255] (set model.input_range to override)",
            type(own).__name__,
            own.name,
        )
        return (0.0, 255.0)
    logger.info("assuming model input_range [0, 1]; set model.input_range if not")
    return (0.0, 1.0)


def _normalizes_raw_pixels(layer) -> bool:
    if not isinstance(layer, keras.layers.Normalization):
        return False
    mean = getattr(layer, "mean", None)
    if mean is None:
        return False
    return float(np.max(np.abs(keras.ops.convert_to_numpy(mean)))) > 1.0
