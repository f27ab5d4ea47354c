"""Receptive-field geometry of a layer, read from the Keras graph, and crops.

A unit's field is the box of input pixels it can depend on: an index interval
per axis, mapped back through every layer between the unit and the input.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from atlas.errors import ModelError
from atlas.field_rules import (
    SPATIAL_RANK,
    Rule,
    Span,
    fixed_rule,
    layer_rule,
    spatial_axes,
)
from atlas.graph import find_layer, qualified_name
from atlas.records import Box

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Step:
    """One layer call on the path, with its geometry along both axes."""

    outputs: tuple[int, ...]
    inputs: tuple[int, ...]
    rules: tuple[Rule, Rule]
    extents: tuple[list[Span | None], list[Span | None]]  # all of each input


class ReceptiveField:
    """The receptive field of every unit of one layer at one input size."""

    def __init__(
        self,
        layer_name: str,
        input_hw: tuple[int, int],
        output_hw: tuple[int, int] | None,
        steps: Sequence[_Step],
        ends: tuple[int, int],
    ) -> None:
        self.layer_name = layer_name
        self.input_hw = input_hw
        self.output_hw = output_hw  # None for a layer without spatial output
        self._steps = list(steps)  # from the layer back to the input
        self._ends = ends  # ids of the layer's output and the model's input
        self._spans: dict[tuple[int, int], Span] = {}

    def box(self, row: int, col: int) -> Box:
        """The half-open input box of the unit at output position (row, col)."""
        if self.output_hw is None:
            return Box(0, 0, *self.input_hw)
        for name, index, size in zip(
            ("row", "col"), (row, col), self.output_hw, strict=True
        ):
            if not 0 <= index < size:
                raise IndexError(
                    f"{name} {index} is outside layer {self.layer_name!r}, whose "
                    f"output is {self.output_hw} at input size {self.input_hw}"
                )
        top, bottom = self._span(0, row)
        left, right = self._span(1, col)
        return Box(top, left, bottom + 1, right + 1)

    def _span(self, axis: int, index: int) -> Span:
        key = (axis, index)
        if key not in self._spans:
            self._spans[key] = self._field_span(axis, index)
        return self._spans[key]

    def _field_span(self, axis: int, index: int) -> Span:
        """The exact support, extended past the border where it meets one.

        The support (spans clipped to every tensor on the way) is what the
        unit reads; where it reaches an image edge, the geometric span (never
        clipped) says how far the field runs on into the padding, so a crop
        keeps the image in its place within the field.
        """
        size = self.input_hw[axis]
        exact = _trace(self._steps, self._ends, axis, index, clip=True)
        reach = _trace(self._steps, self._ends, axis, index, clip=False)
        if exact is None or reach is None:
            return (0, size - 1)
        top = reach[0] if exact[0] <= 0 else exact[0]
        bottom = reach[1] if exact[1] >= size - 1 else exact[1]
        return (top, bottom)


def receptive_field(
    model: keras.Model, layer_name: str, input_hw: tuple[int, int]
) -> ReceptiveField:
    """Read the field geometry of `layer_name` from the graph of `model`."""
    inputs, outputs = _graph_ends(model)
    target = _layer_output(model, layer_name, outputs)
    input_ids = {id(t) for t in inputs}
    nodes = _ancestors([target], input_ids)
    fmt = _data_format(nodes)
    specs = _forward_specs(nodes, inputs, input_hw, fmt)
    source = next(t for t in inputs if len(t.shape) == SPATIAL_RANK)
    # LIMITATION: a model with several image inputs is measured from its first.
    steps = [_step(node, specs, fmt) for node in reversed(nodes)]
    out_hw = _hw(specs[id(target)], fmt)
    logger.debug("receptive field of %r: %d layers on its path", layer_name, len(steps))
    return ReceptiveField(layer_name, input_hw, out_hw, steps, (id(target), id(source)))


def crop(
    image: np.ndarray, box: Box, pad_value: float | np.ndarray = 0.0
) -> np.ndarray:
    """Cut `box` from an (H, W, ...) image; pixels past the border get pad_value."""
    out = np.empty((box.height, box.width, *image.shape[2:]), dtype=image.dtype)
    out[...] = pad_value
    top, left = max(box.top, 0), max(box.left, 0)
    bottom = min(box.bottom, image.shape[0])
    right = min(box.right, image.shape[1])
    if top < bottom and left < right:
        out[top - box.top : bottom - box.top, left - box.left : right - box.left] = (
            image[top:bottom, left:right]
        )
    return out


def _trace(
    steps: list[_Step], ends: tuple[int, int], axis: int, index: int, clip: bool
) -> Span | None:
    """The input span one output index depends on, along one axis.

    With `clip`, every span is cut to the tensor it indexes, so positions
    that exist only as padding read nothing further back.
    """
    target, source = ends
    demand: dict[int, Span | None] = {target: (index, index)}
    for step in steps:
        wanted = [demand[t] for t in step.outputs if t in demand]
        if not wanted:
            continue
        span = _hull(wanted)
        ins = step.extents[axis] if span is None else step.rules[axis](span)
        if clip:
            ins = [_clip(s, e) for s, e in zip(ins, step.extents[axis], strict=True)]
        for tensor, got in zip(step.inputs, ins, strict=True):
            if got is not None and got[0] > got[1]:
                continue  # only padding of this input: it reads nothing
            demand[tensor] = _hull([demand[tensor], got]) if tensor in demand else got
    return demand.get(source)


def _clip(span: Span | None, extent: Span | None) -> Span | None:
    if span is None or extent is None:
        return span
    return max(span[0], extent[0]), min(span[1], extent[1])


def _hull(spans: list[Span | None]) -> Span | None:
    if any(span is None for span in spans):
        return None
    return min(s[0] for s in spans), max(s[1] for s in spans)


def _graph_ends(model: keras.Model) -> tuple[list, list]:
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, TypeError, ValueError) as err:
        raise ModelError(
            f"model {model.name!r} has no graph to read receptive fields from; "
            "expected a Functional or Sequential model built on an Input; "
            f"got {type(model).__name__} ({err}); build it with keras.Input"
        ) from err
    if not any(len(t.shape) == SPATIAL_RANK for t in inputs):
        shapes = [tuple(t.shape) for t in inputs]
        raise ModelError(
            f"model {model.name!r} has no image input; expected a rank-4 input, "
            f"got input shapes {shapes}"
        )
    return inputs, outputs


def _layer_output(model: keras.Model, name: str, outputs: list):
    names = [qualified_name(model, layer) for layer in model.layers]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ModelError(
            f"layer {name!r} is not in model {model.name!r}; expected one of "
            f"{names}{hint}"
        )
    graph = {id(node) for node in _ancestors(outputs, set())}
    layer = find_layer(model, name)
    nodes = [node for node in layer._inbound_nodes if id(node) in graph]
    if not nodes:
        raise ModelError(f"layer {name!r} is not connected to the model's output")
    if len(nodes) > 1:
        # LIMITATION: a layer called twice in one model is measured at its first call.
        logger.warning("layer %r is called %d times; using its first", name, len(nodes))
    return nodes[0].outputs[0]


def _producer(tensor):
    history = getattr(tensor, "_keras_history", None)
    if history is None or history.operation is None:
        return None
    node = history.operation._inbound_nodes[history.node_index]
    return None if node.is_input else node


def _ancestors(tensors: list, input_ids: set[int]) -> list:
    """Nodes that produce `tensors`, inputs first, stopping at `input_ids`."""
    order, done = [], set()
    stack = [(_producer(t), False) for t in tensors if id(t) not in input_ids]
    while stack:
        node, expanded = stack.pop()
        if node is None or id(node) in done:
            continue
        if expanded:
            done.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        parents = [t for t in node.input_tensors if id(t) not in input_ids]
        stack.extend((_producer(t), False) for t in parents)
    return order


def _data_format(nodes: list) -> str:
    for node in nodes:
        fmt = getattr(node.operation, "data_format", None)
        if fmt in ("channels_last", "channels_first"):
            return fmt
    return keras.config.image_data_format()


def _forward_specs(nodes: list, inputs: list, input_hw, fmt: str) -> dict:
    """Concrete output specs of every tensor on the path at `input_hw`."""
    specs = {id(t): _input_spec(t, input_hw, fmt) for t in inputs}
    for node in nodes:
        args, kwargs = node.arguments.fill_in(specs)
        try:
            out = node.operation.compute_output_spec(*args, **kwargs)
        except Exception as err:
            raise ModelError(
                f"cannot size layer {node.operation.name!r} "
                f"({type(node.operation).__name__}) at input size {input_hw}: {err}"
            ) from err
        specs.update(zip(map(id, node.outputs), keras.tree.flatten(out), strict=True))
    return specs


def _input_spec(tensor, input_hw, fmt: str) -> keras.KerasTensor:
    shape = [1 if dim is None else dim for dim in tensor.shape]
    if len(shape) == SPATIAL_RANK:
        for axis, size in zip(spatial_axes(fmt), input_hw, strict=True):
            shape[axis] = size
    return keras.KerasTensor(tuple(shape), dtype=tensor.dtype)


def _hw(spec, fmt: str) -> tuple[int, int] | None:
    if len(spec.shape) != SPATIAL_RANK:
        return None
    rows, cols = spatial_axes(fmt)
    return spec.shape[rows], spec.shape[cols]


def _step(node, specs: dict, fmt: str) -> _Step:
    ins = [_hw(specs[id(t)], fmt) for t in node.input_tensors]
    out = _hw(specs[id(node.outputs[0])], fmt)
    extents = tuple(
        [None if hw is None else (0, hw[a] - 1) for hw in ins] for a in (0, 1)
    )
    rules = tuple(fixed_rule(extents[a]) for a in (0, 1))
    if out is not None and any(hw is not None for hw in ins):
        sizes = [[None if hw is None else hw[a] for hw in ins] for a in (0, 1)]
        known = [layer_rule(node.operation, a, sizes[a], out[a], fmt) for a in (0, 1)]
        if None in known:
            _warn_unknown(node.operation)
        else:
            rules = tuple(known)
    ids = tuple(map(id, node.outputs)), tuple(map(id, node.input_tensors))
    return _Step(*ids, rules, extents)


def _warn_unknown(op) -> None:
    logger.warning(
        "layer %r (%s) has no known receptive-field geometry; its units are "
        "taken to see all of its input",
        op.name,
        type(op).__name__,
    )
