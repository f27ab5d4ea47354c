"""Flattening nested models: one functional graph whose every layer can be
read, with nested layers listed under qualified names like `base/conv1`.

A model used as a layer inside another hides its layers' outputs from the
outer graph ("not connected"). Re-calling every layer along the outer graph
gives one graph where each of them has an output of its own. Layers whose
names TensorFlow refuses as a scope (spaces, quotes, "<") get safe twins.
"""

from __future__ import annotations

import hashlib
import logging
import re
import weakref
from dataclasses import dataclass, field

import keras

from atlas.errors import ModelError

# Keras forbids "/" in layer names; inside the flat graph a nested layer is
# named with this separator, and shown with "/".
INTERNAL_SEPARATOR = "."
QUALIFIER = "/"
# TensorFlow's name scopes accept only these characters; Keras accepts more
# in a layer name, and such a layer then fails inside every tf.function.
_SCOPE_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_SCOPE_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")

logger = logging.getLogger(__name__)

# Flat model -> {qualified name: internal layer name}, for nested layers.
_NAMES: weakref.WeakKeyDictionary[keras.Model, dict[str, str]] = (
    weakref.WeakKeyDictionary()
)


@dataclass
class _State:
    """What one flattening has made: shown name -> internal name, and
    shown name -> (original layer, its twin), so a layer called twice
    keeps one twin."""

    names: dict[str, str]
    twins: dict[str, tuple] = field(default_factory=dict)


def is_nested(model: keras.Model) -> bool:
    """Whether any layer of `model` is itself a model."""
    return any(isinstance(layer, keras.Model) for layer in model.layers)


def needs_flattening(model: keras.Model) -> bool:
    """Nested models, or layer names TensorFlow cannot use as a scope."""
    return is_nested(model) or any(
        not _SCOPE_SAFE.match(layer.name) for layer in model.layers
    )


def flatten(model: keras.Model, front: keras.layers.Layer | None = None) -> keras.Model:
    """A functional model with the same inputs and outputs in which no layer
    is a model; `model` itself is returned when nothing is nested and there
    is no `front` layer to apply to its (single) input first.

    Top-level layers are reused; nested layers are cloned with their
    weights under unique names, so the user's model is left as it was.
    """
    if front is None and not needs_flattening(model):
        return model
    state = _State(names=dict(_NAMES.get(model, {})))
    inputs = [
        keras.Input(batch_shape=t.shape, dtype=t.dtype, name=_input_name(t))
        for t in model.inputs
    ]
    first = [front(inputs[0]), *inputs[1:]] if front is not None else inputs
    outputs = _inline(model, first, "", state)
    # The user's model name stays: pages and the cache key show it.
    flat = keras.Model(_single(inputs), _single(outputs), name=model.name)
    _NAMES[flat] = state.names
    if state.names:
        logger.info(
            "flattened %d nested layer(s) of model %r, named like %r",
            len(state.names),
            model.name,
            next(iter(state.names)),
        )
    return flat


def adopt_names(model: keras.Model, source: keras.Model) -> None:
    """Let `model`, re-made from `source` with the same layer names, show
    them as `source` does."""
    if source in _NAMES:
        _NAMES[model] = dict(_NAMES[source])


def qualified_name(model: keras.Model, layer: keras.layers.Layer) -> str:
    """The name the atlas shows for a layer of a (possibly flat) model."""
    for shown, internal in _NAMES.get(model, {}).items():
        if internal == layer.name:
            return shown
    return layer.name


def find_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """The layer called `name` (qualified names included) in `model`."""
    internal = _NAMES.get(model, {}).get(name, name)
    try:
        return model.get_layer(internal)
    except ValueError:
        raise ModelError(
            f"model {model.name!r} has no layer {name!r}; run `atlas layers` "
            "to list the layers it has."
        ) from None


def _inline(model: keras.Model, inputs: list, prefix: str, state: _State) -> list:
    """Call `model`'s layers on `inputs`, returning its outputs' tensors."""
    if isinstance(model, keras.Sequential):
        graph = getattr(model, "_functional", None)
        if graph is None:  # never built: its layers simply run in order
            return [_in_order(model.layers, inputs, prefix, state)]
        model = graph
    try:
        sources, nodes_by_depth = model.inputs, model._nodes_by_depth
    except (AttributeError, ValueError) as exc:
        raise ModelError(
            f"nested model {prefix}{model.name!r} has no graph to read; build "
            "it on a keras.Input (or set model.input_shape in the config)."
        ) from exc
    tensors = {id(s): t for s, t in zip(sources, inputs, strict=True)}
    for depth in sorted(nodes_by_depth, reverse=True):
        for node in nodes_by_depth[depth]:
            if node.operation is None or node.is_input:
                continue
            args, kwargs = node.arguments.fill_in(tensors)
            result = _call(node.operation, args, kwargs, prefix, state)
            flat = keras.tree.flatten(result)
            tensors.update(zip(map(id, node.outputs), flat, strict=True))
    return [tensors[id(t)] for t in model.outputs]


def _in_order(layers: list, inputs: list, prefix: str, state: _State):
    x = inputs[0]
    for layer in layers:
        x = _call(layer, [x], {}, prefix, state)
    return x


def _call(operation, args, kwargs, prefix: str, state: _State):
    if isinstance(operation, keras.Model):
        inner = keras.tree.flatten(args)
        outputs = _inline(operation, inner, f"{prefix}{operation.name}/", state)
        return outputs[0] if len(outputs) == 1 else outputs
    if not prefix and _SCOPE_SAFE.match(operation.name):
        return operation(*args, **kwargs)
    shown = f"{prefix}{operation.name}"
    twins = state.twins
    if shown not in twins:
        twins[shown] = (operation, _clone(operation, _internal_name(shown)))
        state.names[shown] = twins[shown][1].name
    elif twins[shown][0] is operation:
        # A nested model called twice shares its layers: so does the flat
        # one. The atlas reads such a layer at its first call.
        logger.info("layer %r is called more than once; read at its first call", shown)
    return twins[shown][1](*args, **kwargs)


def _clone(layer: keras.layers.Layer, name: str) -> keras.layers.Layer:
    """A copy of `layer` under `name`, with the same weights once built."""
    return remade(layer, {**layer.get_config(), "name": name})


def remade(layer: keras.layers.Layer, config: dict, reshape=None):
    """`layer` made again from `config`, built on the input shapes of its
    first call (passed through `reshape`, if given), with its weights."""
    twin = layer.__class__.from_config(config)
    weights = layer.get_weights()
    if weights:
        nodes = layer._inbound_nodes
        shapes = [t.shape for t in nodes[0].arguments.keras_tensors] if nodes else []
        if reshape is not None:
            shapes = [reshape(shape) for shape in shapes]
        twin.build(shapes[0] if len(shapes) == 1 else shapes)
        twin.set_weights(weights)
    return twin


def _input_name(tensor) -> str:
    history = getattr(tensor, "_keras_history", None)
    layer = getattr(history, "operation", None)
    name = getattr(layer, "name", None) or "image"
    return name if name.endswith("_flat") else f"{name}_flat"


def _single(tensors: list):
    return tensors[0] if len(tensors) == 1 else tensors


def layer_io(model: keras.Model, layer: keras.layers.Layer) -> tuple:
    """The (input, output) tensors of `layer`'s call inside `model`'s graph.

    A layer reused by a flat model was also called in the original graph,
    and `layer.output` names that first call; this finds the right one.
    """
    graph = getattr(model, "_functional", None) or model
    ids = {id(node) for nodes in graph._nodes_by_depth.values() for node in nodes}
    for node in layer._inbound_nodes:
        if id(node) in ids:
            inputs = node.input_tensors
            return inputs[0] if len(inputs) == 1 else inputs, node.outputs[0]
    return layer.input, layer.output


def _internal_name(shown: str) -> str:
    """A unique name TensorFlow accepts as a scope, for a shown name."""
    name = shown.replace(QUALIFIER, INTERNAL_SEPARATOR)
    if _SCOPE_SAFE.match(name):
        return name
    digest = hashlib.sha256(shown.encode("utf-8", "surrogatepass")).hexdigest()
    stem = _SCOPE_UNSAFE.sub("_", name).strip("_.-")[:40] or "layer"
    return f"{stem}_{digest[:8]}"
