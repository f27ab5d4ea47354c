"""The pixel conventions of `keras.applications` models, as a layer at the
front of the model.

Everything the atlas synthesizes, mines and renders is RGB pixels in
`model.input_range`. A model trained on another convention (`caffe`: BGR
minus the ImageNet mean; `tf`: [-1, 1]; `torch`: ImageNet mean and std)
gets a `PixelConvention` layer that turns those pixels into its input, so
it sees what it was trained on and images render as they are.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import keras
import numpy as np

from atlas.errors import ConfigError

# The ImageNet statistics the conventions use, on RGB pixels in [0, 255].
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)  # caffe's, also torch's * 255
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
CONVENTION_NAMES = ("auto", "none", "caffe", "tf", "torch")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Convention:
    """Model input = (RGB pixels in [0, 255], reordered, minus `offset`) /
    `scale`; `offset` and `scale` are in the model's channel order."""

    name: str
    bgr: bool
    offset: tuple[float, float, float]
    scale: tuple[float, float, float]
    summary: str


CONVENTIONS: dict[str, Convention] = {
    "caffe": Convention(
        "caffe",
        bgr=True,
        offset=IMAGENET_MEAN_RGB[::-1],
        scale=(1.0, 1.0, 1.0),
        summary="BGR, minus the ImageNet mean (caffe)",
    ),
    "tf": Convention(
        "tf",
        bgr=False,
        offset=(127.5, 127.5, 127.5),
        scale=(127.5, 127.5, 127.5),
        summary="RGB scaled to [-1, 1] (tf)",
    ),
    "torch": Convention(
        "torch",
        bgr=False,
        offset=tuple(255.0 * m for m in TORCH_MEAN),
        scale=tuple(255.0 * s for s in TORCH_STD),
        summary="RGB in [0, 1], minus the ImageNet mean, over its std (torch)",
    ),
}

# The convention of each keras.applications module's preprocess_input;
# "none" where the model scales its own input (it starts with Rescaling).
APPLICATION_MODULES: dict[str, str] = {
    "convnext": "none",
    "densenet": "torch",
    "efficientnet": "none",
    "efficientnet_v2": "none",
    "inception_resnet_v2": "tf",
    "inception_v3": "tf",
    "mobilenet": "tf",
    "mobilenet_v2": "tf",
    "mobilenet_v3": "none",
    "nasnet": "tf",
    "regnet": "none",
    "resnet": "caffe",
    "resnet_rs": "none",
    "resnet_v2": "tf",
    "vgg16": "caffe",
    "vgg19": "caffe",
    "xception": "tf",
}

# keras.applications' preprocess_input expects pixels in [0, 255].
APPLICATION_RANGE = (0.0, 255.0)


def application_convention(builder) -> str:
    """The convention a `keras.applications` builder's model was trained on."""
    module = builder.__module__.rsplit(".", 1)[-1]
    if module not in APPLICATION_MODULES:
        # LIMITATION: an application module newer than this table is fed
        # plain pixels unless model.preprocess names its convention.
        logger.warning(
            "no known pixel convention for keras.applications.%s (module %r); "
            "set model.preprocess to caffe, tf, torch or none",
            builder.__name__,
            module,
        )
        return "none"
    return APPLICATION_MODULES[module]


def resolve(preprocess: str, application) -> str:
    """The convention `model.preprocess` means: "auto" is the application's
    own convention, and "none" for a model file."""
    if preprocess not in CONVENTION_NAMES:
        raise ConfigError(
            f"model.preprocess {preprocess!r} is not a convention; choose one "
            f"of {list(CONVENTION_NAMES)}."
        )
    if preprocess != "auto":
        return preprocess
    return application_convention(application) if application else "none"


@keras.saving.register_keras_serializable(package="neuron_atlas")
class PixelConvention(keras.layers.Layer):
    """RGB pixels in `input_range` -> the input of a model trained on the
    `convention` of keras.applications; computed in float32."""

    def __init__(self, convention: str, input_range=APPLICATION_RANGE, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if convention not in CONVENTIONS:
            raise ConfigError(
                f"unknown pixel convention {convention!r}; choose one of "
                f"{sorted(CONVENTIONS)}."
            )
        self.convention = convention
        self.input_range = (float(input_range[0]), float(input_range[1]))
        spec = CONVENTIONS[convention]
        low, high = self.input_range
        to_255 = 255.0 / (high - low)
        scale = np.asarray(spec.scale, np.float64)
        self._order = [2, 1, 0] if spec.bgr else [0, 1, 2]
        self._gain = (to_255 / scale).astype(np.float32)
        self._bias = ((-low * to_255 - np.asarray(spec.offset)) / scale).astype(
            np.float32
        )

    def call(self, pixels):
        if self._order != [0, 1, 2]:
            pixels = keras.ops.take(pixels, self._order, axis=-1)
        return pixels * self._gain + self._bias

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "convention": self.convention,
            "input_range": list(self.input_range),
        }


def convention_layer(model: keras.Model) -> PixelConvention | None:
    """The PixelConvention layer the atlas put in front of `model`, if any."""
    return next(
        (layer for layer in model.layers if isinstance(layer, PixelConvention)),
        None,
    )


def scales_itself(model: keras.Model) -> keras.layers.Layer | None:
    """The Rescaling or Normalization layer the model's input meets first,
    past layers that leave pixel values as they are at inference (random
    augmentation, Resizing, cropping, dropout, noise); None if another kind
    of layer comes first."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Rescaling | keras.layers.Normalization):
            return layer
        if not _keeps_pixel_values(layer):
            return None
    return None


def _keeps_pixel_values(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, _PASS_THROUGH) or is_image_preprocessing(layer)


def is_image_preprocessing(layer) -> bool:
    """A Keras image preprocessing layer: augmentation, Resizing, cropping."""
    return type(layer).__module__.startswith(_IMAGE_PREPROCESSING)


_IMAGE_PREPROCESSING = "keras.src.layers.preprocessing.image_preprocessing"
_PASS_THROUGH = (
    keras.layers.InputLayer,
    keras.layers.Identity,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.GaussianNoise,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
)


def looks_like_application(model_name: str) -> str | None:
    """The keras.applications builder whose default model name `model_name`
    starts with (e.g. "mobilenetv2_1.00_224" -> "MobileNetV2"), if any."""
    key = re.sub(r"[^a-z0-9]", "", model_name.lower())
    best = None
    for name, builder in vars(keras.applications).items():
        if not (callable(builder) and name[:1].isupper()):
            continue
        candidate = re.sub(r"[^a-z0-9]", "", name.lower())
        if key.startswith(candidate) and (best is None or len(name) > len(best)):
            best = name
    return best
