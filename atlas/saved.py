"""What a saved model file says about itself, read without loading it,
and what to tell a user when Keras cannot load it.

A `.keras` or `.h5` file holds its model config as JSON: the functions its
layers name and the arguments they carry can be read there, so a failed
load can name the layer at fault and the fix.
"""

from __future__ import annotations

import json
import logging
import re
import zipfile
from pathlib import Path

_UNKNOWN_KWARG = re.compile(
    r"Unrecognized keyword arguments? passed to (\w+): \{'(\w+)'"
)

logger = logging.getLogger(__name__)


def tensorflow_functions(config) -> dict[str, object]:
    """TensorFlow's own functions a saved config names as activations (e.g.
    tf.nn.softmax, saved as "softmax_v2"), which Keras cannot look up by
    name; found by name in tf.nn and tf.math, no code from the file runs."""
    wanted = {name for _, name in function_references(config)}
    if not wanted:
        return {}
    import tensorflow as tf

    found = {}
    for namespace in (tf.nn, tf.math):
        for value in vars(namespace).values():
            name = getattr(value, "__name__", None)
            if callable(value) and name in wanted:
                found.setdefault(name, value)
    if found:
        logger.info("reading TensorFlow function(s) %s by name", sorted(found))
    return found


def function_references(config) -> list[tuple[str, str]]:
    """(layer name, function name) of every plain function a saved model
    config refers to, sub-models included."""
    found = [
        (str(inner["name"]), str(value.get("config")))
        for _, inner in _layer_configs(config)
        for value in inner.values()
        if isinstance(value, dict) and value.get("class_name") == "function"
    ]
    return list(dict.fromkeys(found))


def load_failure(path: Path, exc: Exception, config, known: set[str]) -> str:
    text = str(exc)
    unknown = [
        (layer, name)
        for layer, name in function_references(config)
        if name not in known
    ]
    if unknown:
        listed = ", ".join(f"layer {layer!r} uses {name!r}" for layer, name in unknown)
        return (
            f"'{path}' names functions Keras cannot load by name ({listed}). "
            "Re-save the model with Keras's own activations (e.g. "
            "activation='softmax'), or set model.custom_module to a module "
            "whose custom_objects dict maps each name to its function."
        )
    if "safe_mode" in text or "unsafe" in text.lower():
        return (
            f"'{path}' holds Python code (e.g. a Lambda layer), which Keras "
            "does not run by default. Only if you trust the file, set "
            "model.safe_mode = false under [model]; better, replace the "
            "Lambda with a layer class and re-save."
        )
    kwarg = _UNKNOWN_KWARG.search(text)
    if kwarg:
        layer, name = kwarg.groups()
        named = _layers_with(config, layer, name)
        which = f" ({', '.join(repr(n) for n in named)})" if named else ""
        return (
            f"'{path}' was saved by an older Keras: its {layer} layers{which} "
            f"carry the argument {name!r}, which Keras 3 does not accept. Load "
            "it with the Keras that saved it and re-save it as .keras, or "
            f"remove {name!r} from those layers' config."
        )
    if "Unknown layer" in text or "Could not locate" in text:
        return (
            f"'{path}' uses a layer Keras does not know: {text.splitlines()[0]} "
            "Set model.custom_module to the Python module that defines it."
        )
    return (
        f"cannot load model '{path}': {type(exc).__name__}: "
        f"{text.splitlines()[0] if text else ''} Check that the file is a "
        "complete Keras model (re-save it with model.save('model.keras'))."
    )


def saved_config(path: Path) -> dict | None:
    """The model config stored in a .keras or .h5 file, or None if unread."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(path, "r") as file:
            text = file.attrs["model_config"]
        return json.loads(text.decode() if isinstance(text, bytes) else text)
    except (OSError, KeyError, ValueError, ImportError):
        return None


def _layers_with(config, class_name: str, kwarg: str) -> list[str]:
    """Names of the `class_name` layers whose config carries `kwarg`."""
    found = [
        str(inner.get("name", "?"))
        for name, inner in _layer_configs(config)
        if name == class_name and kwarg in inner
    ]
    return list(dict.fromkeys(found))


def _layer_configs(config):
    """(class name, config) of every named layer or model in a saved model
    config, at any depth."""
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(inner, dict) and "name" in inner:
            yield config.get("class_name"), inner
        for value in config.values():
            yield from _layer_configs(value)
    elif isinstance(config, list):
        for value in config:
            yield from _layer_configs(value)


def savedmodel_message(path: Path) -> str:
    """What to do with a directory given as model.path."""
    if (path / "saved_model.pb").exists():
        return (
            f"'{path}' is a TensorFlow SavedModel directory (e.g. written by "
            "model.export()), which Keras 3 cannot load as a model. Load it "
            "where it was made and re-save it with model.save('model.keras'), "
            "then set model.path to that file."
        )
    return f"model.path '{path}' is a directory; point it at a .keras or .h5 file."
