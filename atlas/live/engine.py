"""The warm model of the live probe: per layer, one compiled extractor that
turns a batch of input images into packed activation tiles, per-unit
maxima and the model's top classes, all in one call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from atlas.errors import ModelError
from atlas.graph import qualified_name
from atlas.live.protocol import ProbeFrame, frame_grid
from atlas.model import layer_output
from atlas.records import LayerInfo

# Classes listed per frame, as in ImageNet's top-5 error.
TOP_CLASSES = 5
# Layers whose rank-2 output is read as class scores.
HEAD_LAYERS = frozenset({"Dense", "Softmax", "Activation"})
# Output activations that already give probabilities.
PROBABILITIES = frozenset({"softmax", "sigmoid"})

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Head:
    """The model's classifier output, when it has one."""

    classes: int
    kind: str  # "softmax", "sigmoid" or "softmax of logits"
    names: tuple[str, ...] | None = None

    def name(self, index: int) -> str:
        if self.names is not None:
            return self.names[index]
        return f"class {index}"


@dataclass(frozen=True)
class ProbeLayer:
    """A layer the probe can show."""

    index: int
    info: LayerInfo
    in_atlas: bool

    @property
    def grid(self) -> tuple[int, int]:
        return frame_grid(self.info.units)


class Probe:
    """A loaded model with a compiled extractor per layer, built on first use.

    Not thread-safe: the server calls it from one worker thread only.
    """

    def __init__(
        self,
        model: keras.Model,
        infos: Sequence[LayerInfo],
        shape: tuple[int, int, int],
        input_range: tuple[float, float],
        atlas_layers: Sequence[str] = (),
        head: Head | None = None,
        eager: bool = False,
    ) -> None:
        self.model = model
        self.shape = tuple(int(d) for d in shape)
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.head = head
        self.eager = eager
        chosen = set(atlas_layers)
        self.layers = [
            ProbeLayer(i, info, info.name in chosen) for i, info in enumerate(infos)
        ]
        self._by_name = {layer.info.name: layer.index for layer in self.layers}
        self._extractors: dict[int, Callable] = {}

    def index_of(self, name: str) -> int:
        """The index of the layer called `name`."""
        if name not in self._by_name:
            raise ModelError(
                f"no layer {name!r} with units in model {self.model.name!r}; "
                f"the probe offers {_sample(self._by_name)}."
            )
        return self._by_name[name]

    def layer(self, index: int) -> ProbeLayer:
        """The layer at `index`, or an error naming the valid range."""
        if not 0 <= index < len(self.layers):
            raise ModelError(
                f"layer index {index} is out of range; the probe has layers "
                f"0 to {len(self.layers) - 1} (see /live/api/info)."
            )
        return self.layers[index]

    def scale(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 pixels to the model's input range, as the dataset scales."""
        low, high = self.input_range
        scaled = low + pixels.astype(np.float32) / 255.0 * (high - low)
        return scaled.astype(np.float32)

    def frames(self, index: int, pixels: np.ndarray) -> list[ProbeFrame]:
        """Packed frames of layer `index` for a batch of uint8 images."""
        out = self._run(index, pixels)
        tiles, lows, highs = (out[k].numpy() for k in ("tile", "low", "high"))
        unit_max = out["unit_max"].numpy()
        classes, probs = out["classes"].numpy(), out["probabilities"].numpy()
        return [
            ProbeFrame(tiles[i], lows[i], highs[i], unit_max[i], classes[i], probs[i])
            for i in range(len(tiles))
        ]

    def activations(self, index: int, pixels: np.ndarray) -> np.ndarray:
        """Layer `index`'s float32 activations for a batch of uint8 images."""
        return self._run(index, pixels)["maps"].numpy()

    def warm(self, indices: Sequence[int]) -> None:
        """Compile the extractors of `indices` now rather than on first use."""
        blank = np.zeros((1, *self.shape), np.uint8)
        for index in indices:
            self._run(index, blank)

    def _run(self, index: int, pixels: np.ndarray) -> dict[str, tf.Tensor]:
        if pixels.ndim != 4 or tuple(pixels.shape[1:]) != self.shape:
            raise ModelError(
                f"images of shape {tuple(pixels.shape)}; expected (batch, "
                f"{', '.join(map(str, self.shape))}), the model's input."
            )
        return self._extractor(index)(self.scale(pixels))

    def _extractor(self, index: int) -> Callable:
        if index not in self._extractors:
            layer = self.layer(index)
            logger.debug("compiling the live extractor of %s", layer.info.name)
            self._extractors[index] = self._compile(layer)
        return self._extractors[index]

    def _compile(self, layer: ProbeLayer) -> Callable:
        outputs = [layer_output(self.model, layer.info)]
        if self.head is not None:
            outputs.append(self.model.outputs[0])
        reader = keras.Model(self.model.inputs[0], outputs, name="atlas_live")
        rows, cols = layer.grid
        head = self.head

        def extract(images: tf.Tensor) -> dict[str, tf.Tensor]:
            results = keras.tree.flatten(reader(images, training=False))
            maps = tf.cast(results[0], tf.float32)
            packed = pack_maps(_as_maps(maps), rows, cols)
            batch = tf.shape(images)[0]
            top = top_classes(results[1] if head else None, head, batch)
            return {"maps": maps, **packed, **top}

        if self.eager:
            return extract
        spec = tf.TensorSpec((None, *self.shape), tf.float32)
        return tf.function(extract, input_signature=[spec])


def pack_maps(maps: tf.Tensor, rows: int, cols: int) -> dict[str, tf.Tensor]:
    """Each image's (h, w, units) maps as one uint8 tile, scaled together.

    The whole layer shares one scale per image, from min(0, smallest
    value) to the largest, so that units can be compared at a glance.
    """
    low = tf.minimum(tf.reduce_min(maps, axis=[1, 2, 3]), 0.0)
    high = tf.reduce_max(maps, axis=[1, 2, 3])
    scale = tf.math.divide_no_nan(255.0, high - low)[:, None, None, None]
    levels = tf.round((maps - low[:, None, None, None]) * scale)
    levels = tf.cast(tf.clip_by_value(levels, 0.0, 255.0), tf.uint8)
    units = maps.shape[-1]
    levels = tf.pad(levels, [[0, 0], [0, 0], [0, 0], [0, rows * cols - units]])
    batch, height, width = tf.unstack(tf.shape(levels)[:3])
    grid = tf.reshape(levels, [batch, height, width, rows, cols])
    grid = tf.transpose(grid, [0, 3, 1, 4, 2])
    tile = tf.reshape(grid, [batch, rows * height, cols * width])
    unit_max = tf.reduce_max(maps, axis=[1, 2])
    return {"tile": tile, "low": low, "high": high, "unit_max": unit_max}


def top_classes(
    outputs: tf.Tensor | None, head: Head | None, batch: tf.Tensor
) -> dict[str, tf.Tensor]:
    """The most probable classes of each image, or empty lists."""
    if head is None or outputs is None:
        return {
            "classes": tf.zeros([batch, 0], tf.int32),
            "probabilities": tf.zeros([batch, 0], tf.float32),
        }
    values = tf.cast(outputs, tf.float32)
    if head.kind == "softmax of logits":
        values = tf.nn.softmax(values, axis=-1)
    best = tf.math.top_k(values, k=min(TOP_CLASSES, head.classes))
    return {"classes": best.indices, "probabilities": best.values}


def find_head(
    model: keras.Model,
    infos: Sequence[LayerInfo],
    names: Sequence[str] | None = None,
) -> Head | None:
    """The model's classifier head: one rank-2 output of two or more classes
    from a Dense, Softmax or Activation layer.

    A softmax or sigmoid output gives probabilities as it is; any other
    output is read as logits, and softmax turns them into probabilities.
    """
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        return None
    classes = model.outputs[0].shape[-1]
    if classes is None or classes < 2:
        return None
    history = getattr(model.outputs[0], "_keras_history", None)
    layer = history[0] if history else None
    if layer is None or layer.__class__.__name__ not in HEAD_LAYERS:
        return None  # e.g. pooled features: no classes to name
    name = qualified_name(model, layer)
    activation = next((i.activation for i in infos if i.name == name), "linear")
    kind = activation if activation in PROBABILITIES else "softmax of logits"
    labels = tuple(names) if names is not None and len(names) == classes else None
    return Head(int(classes), kind, labels)


def _as_maps(values: tf.Tensor) -> tf.Tensor:
    """Dense outputs (batch, units) as 1x1 maps (batch, 1, 1, units)."""
    if values.shape.rank == 2:
        return values[:, None, None, :]
    return values


def _sample(names: dict[str, int]) -> str:
    shown = ", ".join(repr(n) for n in list(names)[:8])
    more = f" and {len(names) - 8} more" if len(names) > 8 else ""
    return shown + more
