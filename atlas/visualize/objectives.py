"""Objectives: what ascent maximizes, read from a layer's output.

A layer's output gives one objective per unit; sample i of a batch is
optimized for its own unit, so `unit_objectives` reads one value per sample.
"""

from __future__ import annotations

import tensorflow as tf

from atlas.errors import ConfigError, ModelError

OBJECTIVES = ("channel", "neuron")
LAYER_KINDS = ("conv", "dense")


def check_objective(objective: str, kind: str) -> None:
    """Raise if `objective` or the layer `kind` is not one we can read."""
    if objective not in OBJECTIVES:
        expected = " or ".join(repr(name) for name in OBJECTIVES)
        raise ConfigError(
            f"unknown objective {objective!r}; expected {expected}. "
            "Set objective to one of them."
        )
    if kind not in LAYER_KINDS:
        raise ModelError(
            f"cannot visualize a layer of kind {kind!r}; expected 'conv' "
            "(an (N, h, w, U) output) or 'dense' (an (N, U) output)."
        )


def layer_objectives(output: tf.Tensor, kind: str, objective: str) -> tf.Tensor:
    """Every unit's objective on every sample: (N, U) float32.

    conv: "channel" is the mean over positions, "neuron" the value at the
    centre position (h // 2, w // 2). dense: the unit's value (objective is
    ignored). Read in float32 so mixed-precision models sum accurately.
    """
    output = tf.cast(output, tf.float32)
    if kind == "dense":
        return output
    if objective == "channel":
        return tf.reduce_mean(output, axis=(1, 2))
    size = tf.shape(output)
    return output[:, size[1] // 2, size[2] // 2, :]


def layer_peaks(output: tf.Tensor, kind: str) -> tf.Tensor:
    """Every unit's largest value over positions, (N, U) float32: the
    measure mining ranks dataset images by, so the two compare."""
    output = tf.cast(output, tf.float32)
    if kind == "dense":
        return output
    return tf.reduce_max(output, axis=(1, 2))


def unit_objectives(objectives: tf.Tensor, units: tf.Tensor) -> tf.Tensor:
    """(N, U) objectives and (N,) unit indices -> (N,): sample i's unit."""
    return tf.gather(objectives, units, axis=1, batch_dims=1)


def ascent_objectives(post: tf.Tensor, pre: tf.Tensor, signs: tf.Tensor) -> tf.Tensor:
    """(N,) what each sample climbs: its unit's objective times its sign.

    A maximized unit that is off (post <= 0), where a ReLU zeroes its own
    gradient, climbs its pre-activation instead: a redirected ReLU
    gradient. A negative sample (sign -1) always descends the
    pre-activation, which keeps falling after the ReLU has reached 0.
    """
    climb = tf.where(post <= 0, pre, post)
    return tf.where(signs > 0, climb, -pre)


def similarity(features: tf.Tensor) -> tf.Tensor:
    """(G, K) mean cosine similarity of each of K samples to the others of
    its group, from features (G, K, ...): a diversity penalty.

    Conv features (G, K, h, w, U) are compared by their Gram matrices over
    positions (style, not place: Mosaic and Olah et al. 2017's diversity
    term); dense features (G, K, U) by the vectors themselves.
    """
    features = tf.cast(features, tf.float32)
    if features.shape.rank == 5:
        shape = tf.shape(features)
        flat = tf.reshape(features, (shape[0], shape[1], -1, shape[4]))
        gram = tf.einsum("gkpu,gkpv->gkuv", flat, flat)
        features = tf.reshape(gram, (shape[0], shape[1], -1))
    unit = tf.math.l2_normalize(features, axis=-1)
    cosine = tf.einsum("gkf,glf->gkl", unit, unit)
    count = int(features.shape[1])
    others = tf.reduce_sum(cosine, axis=-1) - tf.linalg.diag_part(cosine)
    return others / max(count - 1, 1)
