"""What a unit has to do with the dataset's classes: the labels of its top-k
examples, the class that dominates them, and the classes whose logits the
unit raises (promotes) or lowers (suppresses).

Influence is the mean gradient of each logit with respect to a uniform
shift of the unit's whole map, over a sample of the dataset: for unit u
and class c, the average over images of sum_(h,w) d logit_c / d a[h, w, u].
Along a linear path (Dense, Flatten, global pooling, dropout, batch
normalization) it equals the product of the kernels; through hidden ReLU
layers it weighs each path by how often it is open on real images.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from atlas.attribute import inference
from atlas.graph import find_layer
from atlas.model import describe_layers, layer_output
from atlas.records import ClassWeight, LayerInfo

logger = logging.getLogger(__name__)

# A class dominates a unit's top-k when it holds more than half of the
# labelled examples and is at least twice as common there as in the dataset
# (so a class that fills the dataset does not "dominate" every unit).
DOMINANT_SHARE = 0.5
DOMINANT_LIFT = 2.0
# Classes listed as promoted and as suppressed per unit.
CLASSES_SHOWN = 3
# Images (evenly spaced) whose gradients are averaged for influence.
INFLUENCE_IMAGES = 256
# Layers a unit may pass through on its way to the logits: dense layers and
# those that act on each channel alone, so the gradient still reads as
# "this unit pushes that class" (a conv would mix it into other units).
HEAD_LAYERS = (
    keras.layers.Dense,
    keras.layers.Flatten,
    keras.layers.Reshape,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.AlphaDropout,
    keras.layers.BatchNormalization,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Softmax,
    keras.layers.Identity,
    keras.src.layers.pooling.base_global_pooling.BaseGlobalPooling,
    keras.src.layers.pooling.base_pooling.BasePooling,  # per channel, no mixing
    keras.layers.ZeroPadding2D,
    keras.layers.Cropping2D,
)


# keras.ops that move values without mixing them.
_MOVES = frozenset({"Transpose", "Reshape"})


def label_counts(labels: Sequence[str | None]) -> dict[str, int]:
    """How many examples carry each label, most common first, then by name."""
    counts = Counter(label for label in labels if label is not None)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def dataset_shares(labels: Sequence[str | None]) -> dict[str, float]:
    """Each label's share of the labelled images of the dataset."""
    counts = Counter(label for label in labels if label is not None)
    total = sum(counts.values())
    return {label: count / total for label, count in counts.items()}


def dominant_label(counts: dict[str, int], shares: dict[str, float]) -> str | None:
    """The class that dominates a unit's top-k (see DOMINANT_SHARE), or None."""
    total = sum(counts.values())
    if not total:
        return None
    label, count = next(iter(counts.items()))
    share = count / total
    expected = shares.get(label, 0.0)
    if share > DOMINANT_SHARE and share >= DOMINANT_LIFT * expected:
        return label
    return None


def class_weights(
    weights: np.ndarray, names: Sequence[str], count: int = CLASSES_SHOWN
) -> tuple[list[ClassWeight], list[ClassWeight]]:
    """(promotes, suppresses) of one unit from its (classes,) influence:
    the largest positive and the most negative weights, strongest first."""
    order = np.argsort(-weights, kind="stable")
    promotes = [ClassWeight(names[c], float(weights[c])) for c in order[:count]]
    lowest = np.argsort(weights, kind="stable")[:count]
    suppresses = [ClassWeight(names[c], float(weights[c])) for c in lowest]
    return (
        [w for w in promotes if w.weight > 0],
        [w for w in suppresses if w.weight < 0],
    )


def class_names(names: Sequence[str] | None, count: int) -> list[str]:
    """The dataset's class names for `count` logits, or their indices."""
    if names is not None and len(names) == count:
        return [str(name) for name in names]
    if names is not None:
        logger.warning(
            "the dataset names %d classes but the model has %d logits; "
            "classes are shown by index",
            len(names),
            count,
        )
    return [str(index) for index in range(count)]


def dataset_classes(
    names: Sequence[str] | None, labels: Sequence[str | None]
) -> list[str] | None:
    """The dataset's classes, for the manifest: the names it gives, else
    its distinct labels (whole numbers by value, then others by name), or
    None when it has no labels."""
    if names is not None:
        return [str(name) for name in names]
    found = {label for label in labels if label is not None}
    if not found:
        return None
    return sorted(found, key=_class_order)


def logits_info(model: keras.Model) -> LayerInfo | None:
    """The output layer, when the model has one dense output of class scores."""
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        return None
    history = getattr(model.outputs[0], "_keras_history", None)
    if history is None:
        return None
    name = history.operation.name
    return next((i for i in describe_layers(model) if i.name == name), None)


def feeds_logits(model: keras.Model, info: LayerInfo, logits: LayerInfo) -> bool:
    """Whether `info`'s output reaches the logits only through HEAD_LAYERS
    (dense, flatten, pooling, normalization, dropout, activations)."""
    if info.name == logits.name:
        return False
    start = id(layer_output(model, info))
    head = find_layer(model, logits.name)
    tensors = [layer_output(model, logits)]
    seen: set[int] = set()
    while tensors:
        tensor = tensors.pop()
        if id(tensor) == start or id(tensor) in seen:
            continue
        seen.add(id(tensor))
        history = getattr(tensor, "_keras_history", None)
        op = getattr(history, "operation", None)
        if op is None or not (op is head or _passes_through(op)):
            return False
        node = op._inbound_nodes[history.node_index]
        tensors.extend(node.input_tensors)
    return bool(seen)


def _passes_through(op) -> bool:
    """A head layer, or a keras.ops call that only moves values (the
    transpose a re-made channels_first model puts before Flatten)."""
    if isinstance(op, HEAD_LAYERS):
        return True
    return not isinstance(op, keras.layers.Layer) and type(op).__name__ in _MOVES


def influence(
    model: keras.Model,
    info: LayerInfo,
    logits: LayerInfo,
    batches: Iterable[np.ndarray],
) -> np.ndarray:
    """(units, classes) mean gradient of each logit w.r.t. a uniform shift
    of each unit's map, over the images of `batches` (see the module
    docstring)."""
    graph = keras.Model(model.inputs[0], layer_output(model, logits))
    target = find_layer(model, info.name)
    total = np.zeros((info.units, graph.outputs[0].shape[-1]), np.float64)
    step = _influence_step(graph, target, info.units)
    count = 0
    for batch in batches:
        total += step(tf.convert_to_tensor(batch, tf.float32)).numpy().T
        count += len(batch)
    return (total / max(count, 1)).astype(np.float32)


def _class_order(label: str) -> tuple[bool, int, str]:
    """Labels "2" before "10", and numbers before names."""
    number = label.isdigit()
    return (not number, int(label) if number else 0, label)


def _influence_step(graph: keras.Model, target, units: int):
    """A compiled function: images -> (classes, units) summed gradients."""

    def shifted(op):
        call = inference(op)
        if op is not target:
            return call
        return lambda *args, **kwargs: _plus(call(*args, **kwargs), shift)

    shift = tf.Variable(tf.zeros([units]), trainable=False)

    def step(images):
        with tf.GradientTape() as tape:
            tape.watch(shift)
            logits = graph._run_through_graph(images, operation_fn=shifted)
            summed = tf.reduce_sum(tf.cast(logits, tf.float32), axis=0)
        return tape.jacobian(summed, shift)

    return tf.function(step, autograph=False, reduce_retracing=True)


def _plus(output: tf.Tensor, shift: tf.Variable) -> tf.Tensor:
    """The unit map shifted, in the layer's own dtype: float16 under a
    mixed_float16 policy, where adding the float32 shift would fail."""
    return output + tf.cast(shift, output.dtype)
