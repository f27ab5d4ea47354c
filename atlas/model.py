"""Describing a loaded model's layers and units, and building the feature
extractors that ascent and mining read activations from."""

from __future__ import annotations

import difflib
import hashlib
import logging
from collections.abc import Sequence

import keras
import numpy as np

from atlas.errors import ModelError
from atlas.graph import find_layer, layer_io, qualified_name
from atlas.loading import load_model  # noqa: F401 (re-exported)
from atlas.records import LayerInfo

logger = logging.getLogger(__name__)

# Activations whose saturation zeroes the gradient: the objective reads the
# pre-activation (logit) instead (Simonyan et al. 2013, sec. 2).
SQUASHING = frozenset({"softmax", "sigmoid", "log_softmax", "hard_sigmoid"})

# Activations whose gradient is exactly zero below 0.
ZERO_GRADIENT = frozenset({"relu", "relu6"})

# Not the user's: the input layer, and the atlas's own pixel convention.
_SKIPPED_CLASSES = frozenset({"InputLayer", "PixelConvention"})
_STANDALONE = {"Softmax": "softmax", "ReLU": "relu"}


def input_spec(model: keras.Model, input_shape: Sequence[int] | None = None):
    """The image input's (height, width, channels), from the model or config."""
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3:
        raise ModelError(
            f"model '{model.name}' takes inputs of shape {shape}; the atlas "
            f"needs images (height, width, channels) in channels-last order."
        )
    if any(d is None for d in shape):
        if input_shape is None:
            raise ModelError(
                f"model '{model.name}' accepts images of any size {shape}; set "
                f"model.input_shape = [height, width, channels] in the config."
            )
        shape = tuple(int(d) for d in input_shape)
    return tuple(int(d) for d in shape)


def describe_layers(model: keras.Model) -> list[LayerInfo]:
    """Every layer whose output has units: rank 4 (conv) or rank 2 (dense).

    Layers of another output rank (a Conv1D after a Reshape: rank 3) are
    left out, and the log names them, so that none vanishes unsaid.
    """
    infos, left_out = [], []
    for layer in model.layers:
        info = _describe(model, layer)
        if info is not None:
            infos.append(info)
        elif (rank := _output_rank(layer)) is not None and rank not in (2, 4):
            left_out.append(f"{qualified_name(model, layer)} (rank {rank})")
    if left_out:
        logger.info(
            "left out %d layer(s) whose output is not an image map (rank 4) "
            "or a vector (rank 2): %s",
            len(left_out),
            ", ".join(left_out),
        )
    return infos


def select_layers(infos: Sequence[LayerInfo], names: Sequence[str]) -> list[LayerInfo]:
    """The infos for `names`, in config order; unknown names get suggestions."""
    by_name = {info.name: info for info in infos}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ModelError(
            "; ".join(_unknown_layer(n, list(by_name)) for n in missing)
            + ". Run `atlas layers` to list them."
        )
    return [by_name[n] for n in names]


def layer_output(model: keras.Model, info: LayerInfo):
    """The symbolic tensor the atlas reads for a layer: its logits if squashing."""
    layer = find_layer(model, info.name)
    inputs, output = layer_io(model, layer)
    if not info.uses_logits:
        return output
    return _linear_output(layer, inputs, "logits")


def pre_activation(model: keras.Model, info: LayerInfo):
    """The layer's output before a ReLU that can zero its gradient, or None.

    Ascent follows it while a unit is inactive, so that a unit that is off
    on the start image can still come alive (a redirected ReLU gradient).
    """
    if info.activation not in ZERO_GRADIENT or info.uses_logits:
        return None
    layer = find_layer(model, info.name)
    inputs, _ = layer_io(model, layer)
    return _linear_output(layer, inputs, "pre")


def ascent_model(model: keras.Model, info: LayerInfo) -> keras.Model:
    """A model of the layer's output, and its pre-activation when it has one."""
    outputs = [layer_output(model, info)]
    pre = pre_activation(model, info)
    if pre is not None:
        outputs.append(pre)
    return keras.Model(model.inputs[0], outputs, name="atlas_layer")


def _linear_output(layer, inputs, suffix: str):
    """The layer's pre-activation, from a linear twin: the model is untouched."""
    if "activation" not in layer.get_config():
        return inputs  # an activation layer: its input is the pre-activation
    twin = layer.__class__.from_config(
        {
            **layer.get_config(),
            "activation": "linear",
            "name": f"{layer.name}_{suffix}",
        }
    )
    twin.build(inputs.shape)
    twin.set_weights(layer.get_weights())
    return twin(inputs)


def feature_model(model: keras.Model, infos: Sequence[LayerInfo]) -> keras.Model:
    """One model that returns the outputs of every layer in `infos`."""
    outputs = [layer_output(model, info) for info in infos]
    return keras.Model(model.inputs[0], outputs, name="atlas_features")


def weights_digest(model: keras.Model) -> str:
    """A hash of the model's architecture and weights, for the build cache."""
    digest = hashlib.sha256(model.to_json().encode())
    for weight in model.weights:
        digest.update(np.ascontiguousarray(weight.numpy()).tobytes())
    return digest.hexdigest()[:16]


def _describe(model: keras.Model, layer) -> LayerInfo | None:
    if layer.__class__.__name__ in _SKIPPED_CLASSES:
        return None
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):
        return None
    if len(shape) not in (2, 4) or shape[-1] is None:
        return None
    activation = _activation_name(layer)
    return LayerInfo(
        name=qualified_name(model, layer),
        class_name=layer.__class__.__name__,
        output_shape=shape,
        units=int(shape[-1]),
        kind="conv" if len(shape) == 4 else "dense",
        activation=activation,
        uses_logits=activation in SQUASHING,
    )


def _output_rank(layer) -> int | None:
    if layer.__class__.__name__ in _SKIPPED_CLASSES:
        return None
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError):
        return None


def _activation_name(layer) -> str:
    """The activation's canonical name: TensorFlow's own functions (e.g.
    tf.nn.softmax, named "softmax_v2") are named as Keras names them."""
    activation = getattr(layer, "activation", None)
    if activation is None:
        return _STANDALONE.get(layer.__class__.__name__, "linear")
    name = getattr(activation, "__name__", str(activation)).lower()
    return name.removesuffix("_v2")


def _unknown_layer(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return f"layers.names: no layer {name!r} with units in the model{hint}"
