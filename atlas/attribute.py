"""Attribution of a unit to input pixels: the plain gradient, the deconvnet
of Zeiler & Fergus (2014) and guided backpropagation (Springenberg et al.
2015), which differ only in how the backward pass crosses ReLU-like sites.

Sites are found by layer type and configuration, not by identity of the
activation function: ReLU, ReLU(max_value, negative_slope, threshold),
LeakyReLU, PReLU, Activation("relu"/"relu6"/"leaky_relu"), keras.ops relu
calls, and any layer whose fused activation is relu, relu6 or leaky_relu
(keras.activations or tf.nn). At each site the forward pass is unchanged;
the backward pass takes the signal g arriving from above and passes on

    gradient   g * f'(x)            the true gradient
    deconvnet  relu(g)              rectified, whatever the input x
    guided     f'(x) * relu(g)      the true gradient of the rectified signal

Every other layer, linear or not (sigmoid, tanh, GELU, softmax, max-pooling,
whose gradient routes to the maximum as Zeiler & Fergus's switches do),
keeps its true gradient. The user's model is never changed: the graph is
re-run layer by layer, with linear copies of layers whose fused activation
is a site, so the forward pass computes the same operations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from atlas.errors import ConfigError, ModelError
from atlas.model import layer_output
from atlas.receptive import crop
from atlas.records import Box, LayerInfo

logger = logging.getLogger(__name__)

METHODS = ("gradient", "deconvnet", "guided")
RELU_FUNCTIONS = frozenset({"relu", "relu6", "leaky_relu"})
RELU_LAYERS = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.PReLU)
RELU_OPS = frozenset({"Relu", "Relu6", "LeakyRelu"})  # keras.ops on tensors
_LINEAR = frozenset({"linear", "identity"})


class Attributor:
    """Compiled attribution of the units of one layer, by one method."""

    def __init__(self, model: keras.Model, info: LayerInfo, method: str) -> None:
        if method not in METHODS:
            raise ConfigError(
                f"attribution method {method!r} is unknown; expected one of "
                f"{list(METHODS)} (mine.heatmaps)"
            )
        self.info, self.method = info, method
        self._graph = keras.Model(model.inputs[0], layer_output(model, info))
        self.sites, self.others = _count_sites(self._graph)
        # Made now, eagerly: copying weights cannot happen while tracing.
        self._twins = {}
        if method != "gradient":
            fused = [op for op in _operations(self._graph) if _fused_site(op)]
            self._twins = {id(op): twin for op in fused if (twin := _twin(op))}
        spec = tf.TensorSpec((None, *self._graph.inputs[0].shape[1:]), tf.float32)
        # A closure, not the bound method: TensorFlow counts traces per
        # Python function and would warn when several layers trace once each.
        self._compiled = tf.function(
            lambda images, units, positions: self._gradients(images, units, positions),
            input_signature=[
                spec,
                tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((None, 2), tf.int32),
            ],
            autograph=False,
        )

    def __call__(
        self, images: np.ndarray, units: Sequence[int], positions: np.ndarray
    ) -> np.ndarray:
        """Input gradients (n, H, W, C) of unit `units[i]` at (row, col)
        `positions[i]` on `images[i]` (positions are ignored for dense)."""
        positions = np.asarray(positions, np.int32).reshape(-1, 2)
        result = self._compiled(
            tf.convert_to_tensor(images, tf.float32),
            tf.convert_to_tensor(np.asarray(units, np.int32)),
            tf.convert_to_tensor(positions),
        )
        return result.numpy()

    def forward(self, images: tf.Tensor) -> tf.Tensor:
        """The layer's output computed through the rewired graph."""
        return self._graph._run_through_graph(images, operation_fn=self._operation)

    def _gradients(self, images, units, positions) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(images)
            output = self.forward(images)
            picked = _pick(output, units, positions)
            total = tf.reduce_sum(picked)
        return tape.gradient(total, images)

    def _operation(self, op) -> Callable:
        if isinstance(op, keras.Model):
            return self._nested(op)
        if self.method == "gradient":
            return inference(op)
        if _standalone_site(op):
            site = _site(inference(op), self.method)
            return lambda x, *args, **kwargs: site(x)
        if id(op) in self._twins:
            return self._fused(op)
        return inference(op)

    def _nested(self, model: keras.Model) -> Callable:
        graph = getattr(model, "_functional", None) or model

        def call(*args, **kwargs):
            return graph._run_through_graph(args, operation_fn=self._operation)

        return call

    def _fused(self, layer) -> Callable:
        twin = self._twins[id(layer)]
        activation = _site(layer.activation, self.method)
        linear = inference(twin)

        def call(*args, **kwargs):
            return activation(linear(*args, **kwargs))

        return call


def attribute(
    model: keras.Model,
    info: LayerInfo,
    units: Sequence[int],
    positions: np.ndarray,
    images: np.ndarray,
    method: str = "guided",
) -> np.ndarray:
    """Input gradients (n, H, W, C) of each unit at its position on its image.

    A one-call form of `Attributor`; keep an Attributor to reuse its
    compiled function across calls.
    """
    return Attributor(model, info, method)(images, units, positions)


def heatmap(gradients: np.ndarray, box: Box) -> np.ndarray:
    """(h, w) uint8 magnitude of one (H, W, C) gradient inside `box`: the
    Euclidean norm over channels, 0 past the border, 255 at the strongest."""
    magnitude = np.sqrt(np.square(gradients.astype(np.float64)).sum(axis=-1))
    cut = crop(magnitude[..., None], box, pad_value=0.0)[..., 0]
    peak = cut.max(initial=0.0)
    if not peak > 0:
        return np.zeros(cut.shape, np.uint8)
    return np.rint(cut / peak * 255.0).astype(np.uint8)


def relu_sites(model: keras.Model) -> list[str]:
    """Names of the ReLU-like sites of `model`'s graph, in graph order."""
    found = []
    for op in _operations(model):
        if _standalone_site(op) or _fused_site(op):
            found.append(op.name)
    return found


def _site(function: Callable, method: str) -> Callable:
    """`function` with its backward pass replaced by the method's rule."""

    @tf.custom_gradient
    def site(x):
        y = function(x)

        def backward(upstream, variables=None):
            signal = tf.nn.relu(upstream)
            if method == "deconvnet":
                through = signal
            else:
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    again = function(x)
                through = tape.gradient(again, x, output_gradients=signal)
            if variables is None:
                return through
            return through, [tf.zeros_like(v) for v in variables]

        return y, backward

    return site


def inference(op) -> Callable:
    """`op` called as the model calls it at inference (training=False)."""
    wants_training = "training" in getattr(op, "_call_context_args", ())

    def call(*args, **kwargs):
        if wants_training:
            kwargs["training"] = False
        return op(*args, **kwargs)

    return call


def _pick(output: tf.Tensor, units: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Sample i's value of unit units[i] at positions[i]."""
    batch = tf.range(tf.shape(units)[0])
    if output.shape.rank == 2:
        return tf.gather_nd(output, tf.stack([batch, units], axis=1))
    if output.shape.rank == 4:
        where = tf.stack([batch, positions[:, 0], positions[:, 1], units], axis=1)
        return tf.gather_nd(output, where)
    raise ModelError(
        f"attribution needs a conv (rank 4) or dense (rank 2) layer output; "
        f"got rank {output.shape.rank}"
    )


def _standalone_site(op) -> bool:
    if isinstance(op, RELU_LAYERS):
        return True
    if isinstance(op, keras.layers.Activation):
        return _function_name(op.activation) in RELU_FUNCTIONS
    return type(op).__module__.startswith("keras.src.ops") and (
        type(op).__name__ in RELU_OPS
    )


def _fused_site(op) -> bool:
    if isinstance(op, keras.layers.Activation | keras.Model):
        return False
    activation = getattr(op, "activation", None)
    return callable(activation) and _function_name(activation) in RELU_FUNCTIONS


def _other_nonlinearity(op) -> bool:
    if isinstance(op, keras.layers.Activation):
        return _function_name(op.activation) not in _LINEAR
    activation = getattr(op, "activation", None)
    if callable(activation) and not isinstance(op, keras.Model):
        return _function_name(activation) not in _LINEAR
    return isinstance(op, keras.layers.ELU | keras.layers.Softmax)


def _function_name(function) -> str:
    return getattr(function, "__name__", type(function).__name__).lower()


def _count_sites(graph: keras.Model) -> tuple[int, int]:
    """(ReLU-like sites, other nonlinear layers) of a graph."""
    ops = list(_operations(graph))
    is_site = [_standalone_site(op) or _fused_site(op) for op in ops]
    others = sum(
        _other_nonlinearity(op) and not site
        for op, site in zip(ops, is_site, strict=True)
    )
    return sum(is_site), others


def _operations(model: keras.Model):
    """Every operation of `model`'s graph, nested models included."""
    graph = getattr(model, "_functional", None) or model
    for depth in sorted(graph._nodes_by_depth, reverse=True):
        for node in graph._nodes_by_depth[depth]:
            op = node.operation
            if op is None or node.is_input:
                continue
            if isinstance(op, keras.Model):
                yield from _operations(op)
            else:
                yield op


def _twin(layer) -> keras.layers.Layer | None:
    """A copy of `layer` without its activation, with the same weights."""
    config = {**layer.get_config(), "activation": "linear"}
    config["name"] = f"{layer.name}_attribution"
    try:
        twin = layer.__class__.from_config(config)
        twin.build(_input_shape(layer))
        twin.set_weights(layer.get_weights())
    except Exception as err:  # a custom layer may not rebuild from its config
        # LIMITATION: a layer that cannot be copied without its fused ReLU
        # keeps the true gradient at that ReLU, with a warning.
        logger.warning(
            "layer %r (%s) cannot be copied without its activation (%s); its "
            "ReLU keeps the true gradient",
            layer.name,
            type(layer).__name__,
            err,
        )
        return None
    return twin


def _input_shape(layer) -> tuple:
    shapes = [tuple(t.shape) for t in layer._inbound_nodes[0].input_tensors]
    return shapes[0] if len(shapes) == 1 else shapes
