"""How each kind of layer maps a span of its output to spans of its inputs,
along one spatial axis: the per-layer rules of receptive-field geometry."""

from __future__ import annotations

import math
from collections.abc import Callable

import keras

from atlas.preprocess import PixelConvention, is_image_preprocessing

SPATIAL_RANK = 4  # (batch, rows, cols, channels), or channels first
ELEMENTWISE_LAYERS = (
    keras.layers.Activation,
    keras.layers.ActivityRegularization,
    keras.layers.AlphaDropout,
    keras.layers.BatchNormalization,
    keras.layers.Dropout,
    keras.layers.ELU,
    keras.layers.GaussianDropout,
    keras.layers.GaussianNoise,
    keras.layers.Identity,
    keras.layers.LeakyReLU,
    keras.layers.Normalization,
    keras.layers.PReLU,
    keras.layers.ReLU,
    keras.layers.Rescaling,
    keras.layers.SpatialDropout2D,
    keras.layers.Add,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Multiply,
    keras.layers.Subtract,
    PixelConvention,
)
AXIS_LAYERS = (  # act along `axis`; every other axis is elementwise
    keras.layers.Concatenate,
    keras.layers.LayerNormalization,
    keras.layers.Softmax,
    keras.layers.UnitNormalization,
    keras.layers.RMSNormalization,
)
WINDOW_LAYERS = (  # a kernel sliding over the input: conv and pooling
    keras.src.layers.convolutional.base_conv.BaseConv,
    keras.src.layers.convolutional.base_depthwise_conv.BaseDepthwiseConv,
    keras.src.layers.convolutional.base_separable_conv.BaseSeparableConv,
    keras.src.layers.pooling.base_pooling.BasePooling,
)
TRANSPOSED_LAYERS = (  # a kernel spread over the output: the gradient of a conv
    keras.src.layers.convolutional.base_conv_transpose.BaseConvTranspose,
)
GLOBAL_LAYERS = (  # every output reads every input position
    keras.src.layers.pooling.base_global_pooling.BaseGlobalPooling,
    keras.layers.GroupNormalization,
)
ELEMENTWISE_OPS = frozenset(  # keras.ops called on symbolic tensors
    "Abs Absolute Add Cast Clip Divide Elu Equal Exp Gelu Greater GreaterEqual "
    "HardSigmoid HardSilu LeakyRelu Less LessEqual Log Maximum Minimum Multiply "
    "Negative NotEqual Power Relu Relu6 Selu Sigmoid Silu Softplus Sqrt Square "
    "Subtract Tanh TrueDivide Where".split()
)

_TRAINING_ONLY = frozenset({"AugMix", "CutMix", "MixUp", "RandAugment"})

Span = tuple[int, int]  # inclusive index interval along one spatial axis
# A rule maps a span of a layer's output to one span per input; None stands
# for a non-spatial input, which the output always reads as a whole.
Rule = Callable[[Span], list[Span | None]]


def spatial_axes(fmt: str) -> tuple[int, int]:
    return (2, 3) if fmt == "channels_first" else (1, 2)


def layer_rule(op, axis: int, ins: list, out: int, fmt: str) -> Rule | None:
    """How `op` maps an output span to input spans along one spatial axis."""
    if isinstance(op, WINDOW_LAYERS) and len(op.strides) == 2:
        dilation = getattr(op, "dilation_rate", (1, 1))[axis]
        kernel = getattr(op, "kernel_size", None) or op.pool_size
        stride = op.strides[axis]
        return _window(kernel[axis], stride, dilation, op.padding, ins[0], out)
    if isinstance(op, TRANSPOSED_LAYERS) and len(op.strides) == 2:
        dilation = op.dilation_rate[axis]
        reach = (op.kernel_size[axis] - 1) * dilation + 1
        return _transposed(reach, op.strides[axis], op.padding, ins[0], out)
    if isinstance(op, keras.layers.ZeroPadding2D):
        return _shift(-op.padding[axis][0])
    if isinstance(op, keras.layers.Cropping2D):
        return _shift(op.cropping[axis][0])
    if isinstance(op, keras.layers.UpSampling2D):
        return _upsampling(op.interpolation, op.size[axis], ins[0], out)
    if isinstance(op, GLOBAL_LAYERS):
        return fixed_rule([None if n is None else (0, n - 1) for n in ins])
    if isinstance(op, AXIS_LAYERS) and _acts_on(op.axis, axis, fmt):
        if isinstance(op, keras.layers.Concatenate):
            return None  # joining along rows or columns moves positions
        return fixed_rule([None if n is None else (0, n - 1) for n in ins])
    if _elementwise(op, fmt):
        return _pointwise(ins, out)
    # LIMITATION: reshapes and nested models on the path make the field the
    # whole of their input, with a warning.
    return None


def _elementwise(op, fmt: str) -> bool:
    if isinstance(op, ELEMENTWISE_LAYERS + AXIS_LAYERS) or _augmentation(op):
        return True
    if isinstance(op, keras.layers.Dense):  # a 1x1 conv on channels-last maps
        return fmt == "channels_last"
    return type(op).__module__.startswith("keras.src.ops") and (
        type(op).__name__ in ELEMENTWISE_OPS
    )


def _augmentation(op) -> bool:
    """Random augmentation, which passes images through unchanged at
    inference (RandomCrop alone still crops then)."""
    name = type(op).__name__
    return (
        is_image_preprocessing(op)
        and (name.startswith("Random") or name in _TRAINING_ONLY)
        and name != "RandomCrop"
    )


def _acts_on(axes, axis: int, fmt: str) -> bool:
    wanted = spatial_axes(fmt)[axis]
    axes = axes if isinstance(axes, (list, tuple)) else [axes]
    return any(a % SPATIAL_RANK == wanted for a in axes)


def _window(kernel, stride, dilation, padding, size_in, size_out) -> Rule:
    reach = (kernel - 1) * dilation + 1  # the effective kernel
    before = 0
    if str(padding).lower() == "same":
        # TensorFlow's SAME: total padding split, the odd pixel after.
        before = max((size_out - 1) * stride + reach - size_in, 0) // 2
    return lambda s: [(s[0] * stride - before, s[1] * stride - before + reach - 1)]


def _transposed(reach, stride, padding, size_in, size_out) -> Rule:
    """Output o of a transposed conv gathers input i at o = i * stride -
    before + tap for taps 0..reach-1, TensorFlow's gradient of a conv from
    size_out to size_in (SAME: padding split, the odd pixel after)."""
    before = 0
    if str(padding).lower() == "same":
        before = max((size_in - 1) * stride + reach - size_out, 0) // 2
    return lambda s: [
        (
            -((reach - 1 - s[0] - before) // stride),  # ceil division
            (s[1] + before) // stride,
        )
    ]


def _shift(offset: int) -> Rule:
    return lambda s: [(s[0] + offset, s[1] + offset)]


def _upsampling(mode: str, factor: int, size_in: int, size_out: int):
    if mode == "nearest":
        return lambda s: [(s[0] // factor, s[1] // factor)]
    if mode != "bilinear":
        return None

    # Half-pixel centres: output o samples input (o + 0.5) / f - 0.5 and
    # its right neighbour, clamped to the image.
    # LIMITATION: bilinear upsampling by an odd factor may widen a box by one
    # pixel whose weight is zero.
    def rule(span: Span) -> list[Span | None]:
        lo = math.floor((span[0] + 0.5) / factor - 0.5)
        hi = math.floor((span[1] + 0.5) / factor - 0.5) + 1
        lo = max(lo, 0) if span[0] >= 0 else lo
        hi = min(hi, size_in - 1) if span[1] < size_out else hi
        return [(lo, hi)]

    return rule


def _pointwise(ins: list, out: int) -> Rule:
    # An input of size 1 against a larger output is broadcast along the axis.
    def rule(span: Span) -> list[Span | None]:
        return [
            None if size is None else (0, 0) if size == 1 < out else span
            for size in ins
        ]

    return rule


def fixed_rule(spans: list[Span | None]) -> Rule:
    return lambda s: list(spans)
