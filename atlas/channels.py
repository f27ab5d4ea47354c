"""Turning a channels_first model into the same model in channels_last.

TensorFlow cannot run channels-first convolutions on a CPU, and the atlas
reads units from the last axis. Every layer of a channels_first model is
re-made in channels_last order with its own weights (a kernel's layout does
not depend on the data format), so unit c of a layer is its channel c,
axis 1 of the original's output. A layer that cannot be re-made exactly
(a Reshape of an image tensor, say) stops the load with its name.
"""

from __future__ import annotations

import logging

import keras

from atlas.errors import ModelError
from atlas.field_rules import ELEMENTWISE_LAYERS, ELEMENTWISE_OPS
from atlas.graph import adopt_names, qualified_name, remade

# Axis i of an NCHW tensor is axis MOVED[i] of the same tensor in NHWC.
MOVED = (0, 3, 1, 2)
# Layers with per-channel parameters along `axis`.
_AXIS_LAYERS = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
    keras.layers.UnitNormalization,
    keras.layers.Softmax,
    keras.layers.Concatenate,
)
# Elementwise layers whose parameters could be per channel keep them only
# when they are scalars.
_SCALAR_ONLY = (keras.layers.Rescaling, keras.layers.Normalization)

logger = logging.getLogger(__name__)


def is_channels_first(model: keras.Model) -> bool:
    """Whether any layer of `model` works in channels_first order."""
    return any(_format(layer) == "channels_first" for layer in model.layers)


def to_channels_last(model: keras.Model) -> keras.Model:
    """`model` itself when nothing is channels_first, else its twin in
    channels_last order, with the same layer names and weights."""
    if not is_channels_first(model):
        return model
    _check_one_format(model)
    source = model.inputs[0]
    if len(source.shape) != 4:
        raise ModelError(
            f"model {model.name!r} is channels_first but its input has shape "
            f"{tuple(source.shape)}; the atlas reads 4-D image inputs."
        )
    _, channels, height, width = source.shape
    image = keras.Input((height, width, channels), name=f"{_name(source)}_last")
    tensors = {id(source): image}
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            args, kwargs = node.arguments.fill_in(tensors)
            ranks = [len(t.shape) for t in node.arguments.keras_tensors]
            try:
                layer = _twin(node.operation, ranks)
            except _Refused as refused:
                raise _refusal(model, node.operation, str(refused)) from None
            result = layer(*args, **kwargs)
            flat = keras.tree.flatten(result)
            tensors.update(zip(map(id, node.outputs), flat, strict=True))
    outputs = [tensors[id(t)] for t in model.outputs]
    single = outputs[0] if len(outputs) == 1 else outputs
    last = keras.Model(image, single, name=model.name)
    adopt_names(last, model)
    logger.info(
        "model %r is channels_first: re-made in channels_last order with the "
        "same weights (unit c of a layer is its channel c)",
        model.name,
    )
    return last


def _twin(layer: keras.layers.Layer, ranks: list[int]):
    """The layer that does on NHWC tensors what `layer` does on NCHW ones."""
    images = any(rank == 4 for rank in ranks)
    if not images:
        return layer  # vectors after Flatten or pooling: unchanged
    if not isinstance(layer, keras.layers.Layer):  # a keras.ops call
        if type(layer).__name__ in ELEMENTWISE_OPS:
            return layer
        raise _Refused("changes the layout of image tensors")
    config = layer.get_config()
    if isinstance(layer, keras.layers.Flatten):
        return _flatten(layer, config)
    if "data_format" in config:
        return _copy(layer, {**config, "data_format": "channels_last"})
    if isinstance(layer, _AXIS_LAYERS):
        return _copy(layer, {**config, "axis": _moved(config["axis"])})
    if isinstance(layer, _SCALAR_ONLY) and _has_channel_parameters(layer):
        raise _Refused("has per-channel parameters along axis 1")
    if isinstance(layer, ELEMENTWISE_LAYERS):
        return layer
    raise _Refused("changes the layout of image tensors")


def _flatten(layer, config):
    """Flatten keeps its order of values: a channels_first Flatten reads
    NHWC order already; a channels_last one read C, H, W."""
    if _format(layer) == "channels_first":
        return _copy(layer, {**config, "data_format": "channels_last"})
    twin = _copy(layer, config)
    return lambda x: twin(keras.ops.transpose(x, (0, 3, 1, 2)))


def _copy(layer, config):
    return remade(layer, config, _moved_shape)


def _moved(axis):
    if isinstance(axis, list | tuple):
        return [_moved(a) for a in axis]
    return MOVED[axis % 4]


def _moved_shape(shape):
    if len(shape) != 4:
        return shape
    return (shape[0], shape[2], shape[3], shape[1])


def _has_channel_parameters(layer) -> bool:
    if isinstance(layer, keras.layers.Rescaling):
        values = [layer.scale, layer.offset]
        return any(isinstance(v, list | tuple) and len(v) > 1 for v in values)
    return True  # a Normalization's statistics follow its axis


def _check_one_format(model: keras.Model) -> None:
    for layer in model.layers:
        if _format(layer) == "channels_last" and _spatial(layer):
            raise ModelError(
                f"model {model.name!r} mixes data formats: layer "
                f"{qualified_name(model, layer)!r} is channels_last while others are "
                "channels_first. Rebuild it in one format and save it."
            )


def _spatial(layer) -> bool:
    """Layers whose data_format says how they read an image tensor."""
    return "data_format" in layer.get_config() and not isinstance(
        layer, keras.layers.Flatten
    )


def _format(layer) -> str | None:
    return getattr(layer, "data_format", None)


class _Refused(Exception):
    """A layer that cannot be re-made in channels_last order, and why."""


def _refusal(model: keras.Model, layer, why: str) -> ModelError:
    name = qualified_name(model, layer) if hasattr(layer, "name") else "?"
    return ModelError(
        f"layer {name!r} ({type(layer).__name__}) of a channels_first "
        f"model {why}, so the atlas cannot re-make it in channels_last order "
        "(TensorFlow cannot run channels-first convolutions on a CPU). "
        "Rebuild the model with data_format='channels_last', copy the "
        "weights, and save it."
    )


def _name(tensor) -> str:
    history = getattr(tensor, "_keras_history", None)
    return getattr(getattr(history, "operation", None), "name", None) or "image"
