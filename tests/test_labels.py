"""Labels of top-k examples, the dominant class, and influence on the
logits, against values worked out by hand on hand-built models; and the
unit records that carry them to the site."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from atlas.assemble import Evidence, layer_record
from atlas.data import open_dataset
from atlas.labels import (
    class_weights,
    dataset_classes,
    dataset_shares,
    dominant_label,
    feeds_logits,
    influence,
    label_counts,
    logits_info,
)
from atlas.mine import mine
from atlas.model import describe_layers, feature_model, select_layers
from atlas.receptive import receptive_field
from atlas.records import ClassWeight, Synthesis


@pytest.mark.parametrize(
    "names, labels, expected",
    [
        (["cat", "dog", "owl"], ["dog", "cat"], ["cat", "dog", "owl"]),
        (None, ["10", "2", None, "2", "0"], ["0", "2", "10"]),
        (None, ["b", "3", "a"], ["3", "a", "b"]),
        (None, [None, None], None),
    ],
)
def test_dataset_classes_names_else_distinct_labels(names, labels, expected):
    assert dataset_classes(names, labels) == expected


def test_label_counts_most_common_first_then_by_name():
    counts = label_counts(["b", "a", None, "c", "a", "b", "a"])
    assert list(counts.items()) == [("a", 3), ("b", 2), ("c", 1)]


@pytest.mark.parametrize(
    "labels, top, expected",
    [
        (["a", "b", "c", "d"] * 5, ["a", "a", "a", "b", "c"], "a"),  # 60%, 2.4x
        (["a", "b", "c", "d"] * 5, ["a", "a", "b", "b", "c", "d"], None),  # tie
        (["a"] * 15 + ["b"] * 5, ["a", "a", "a", "a", "b"], None),  # 80%, 1.07x
        (["a"] * 2 + ["b"] * 18, ["a", "a", "b"], "a"),  # 67%, 6.7x
        ([None] * 4, [None, None], None),  # no labels
    ],
)
def test_dominant_label_needs_a_majority_above_its_dataset_share(labels, top, expected):
    assert dominant_label(label_counts(top), dataset_shares(labels)) == expected


def test_class_weights_strongest_first_and_signed():
    promotes, suppresses = class_weights(
        np.array([0.5, -2.0, 3.0, 0.0, -0.1]), ["a", "b", "c", "d", "e"], count=3
    )
    assert promotes == [ClassWeight("c", 3.0), ClassWeight("a", 0.5)]
    assert suppresses == [ClassWeight("b", -2.0), ClassWeight("e", -0.1)]


def _set(model, name, *weights):
    model.get_layer(name).set_weights([np.asarray(w, np.float32) for w in weights])


def _influence(model, name, images):
    infos = describe_layers(model)
    info = select_layers(infos, [name])[0]
    logits = logits_info(model)
    assert feeds_logits(model, info, logits)
    return influence(model, info, logits, [images[:3], images[3:]])


def test_influence_through_dense_and_pooling_is_the_kernel():
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="c")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="out")(x)
    model = keras.Model(inputs, outputs)
    kernel = [[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]
    _set(model, "out", kernel, [0.1, 0.2, 0.3])
    images = np.random.default_rng(0).normal(size=(7, 4, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(_influence(model, "c", images), kernel, atol=1e-6)


def test_influence_through_flatten_sums_the_positions():
    inputs = keras.Input((3, 3, 1))
    x = keras.layers.Conv2D(2, 2, name="c")(inputs)  # 2x2 positions
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    kernel = np.arange(16, dtype=np.float32).reshape(8, 2) - 5  # rows: (pos, unit)
    _set(model, "out", kernel, [0.0, 0.0])
    images = np.ones((5, 3, 3, 1), np.float32)
    expected = kernel.reshape(4, 2, 2).sum(axis=0)  # (unit, class)
    np.testing.assert_allclose(_influence(model, "c", images), expected, atol=1e-5)


def test_influence_through_a_hidden_relu_averages_the_open_paths():
    inputs = keras.Input((2,))
    h = keras.layers.Dense(2, name="h")(inputs)
    mid = keras.layers.Dense(2, activation="relu", name="mid")(h)
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(mid))
    _set(model, "h", np.eye(2), [0.0, 0.0])
    k1, b1 = np.array([[1.0, -1.0], [2.0, 1.0]]), np.array([0.0, 0.5])
    k2 = np.array([[3.0, -1.0], [1.0, 2.0]])
    _set(model, "mid", k1, b1)
    _set(model, "out", k2, [0.0, 0.0])
    images = np.array([[1, 1], [-1, 0], [0, -2], [2, -1], [0.5, 0.5]], np.float32)
    open_ = (images @ k1 + b1) > 0  # which hidden units pass, per image
    expected = np.mean([k1 @ np.diag(o) @ k2 for o in open_], axis=0)
    np.testing.assert_allclose(_influence(model, "h", images), expected, atol=1e-6)


def test_feeds_logits_only_through_head_layers():
    inputs = keras.Input((6, 6, 1))
    a = keras.layers.Conv2D(2, 3, name="a")(inputs)
    b = keras.layers.Conv2D(2, 3, name="b")(a)
    x = keras.layers.MaxPooling2D(2)(b)  # per channel: b still feeds the logits
    x = keras.layers.GlobalMaxPooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
    infos = {i.name: i for i in describe_layers(model)}
    logits = logits_info(model)
    assert logits.name == "out"
    assert feeds_logits(model, infos["b"], logits)
    assert not feeds_logits(model, infos["a"], logits)  # through conv b
    assert not feeds_logits(model, infos["out"], logits)


def _tiny_layer(tmp_path):
    """A conv layer whose unit 0 copies the pixel and unit 1 negates it,
    over labelled images, mined with k=2."""
    inputs = keras.Input((4, 4, 1))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, name="c")
    x = keras.layers.GlobalAveragePooling2D()(conv(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
    _set(model, "c", np.array([1.0, -1.0]).reshape(1, 1, 1, 2))
    _set(model, "out", [[2.0, -1.0], [0.0, 0.5]], [0.0, 0.0])
    pixels = np.zeros((6, 4, 4, 1), np.uint8)
    for i in range(6):
        pixels[i, i % 4, (i + 1) % 4] = 40 * (i + 1)  # image i peaks at 40(i+1)
    labels = np.array([0, 1, 0, 1, 1, 1])
    np.savez(tmp_path / "d.npz", x=pixels, y=labels, class_names=["cat", "dog"])
    data = open_dataset(tmp_path / "d.npz", (4, 4, 1), (0.0, 1.0))
    info = select_layers(describe_layers(model), ["c"])[0]
    mined = mine(feature_model(model, [info]), [info], data.pipeline(4), k=2)["c"]
    return model, info, data, mined


def test_layer_record_carries_bottom_k_labels_histogram_and_influence(tmp_path):
    model, info, data, mined = _tiny_layer(tmp_path)
    field = receptive_field(model, "c", (4, 4))
    synthesis = Synthesis(
        preset="p",
        units=np.arange(2),
        images=np.zeros((2, 4, 4, 1), np.float32),
        start=np.zeros(2),
        final=np.ones(2),
        layer_max=np.ones(2, bool),
        peak=np.ones(2),
    )
    heat = np.zeros((2, 2, 1, 1), np.uint8)
    heat[0, 0] = 255
    evidence = Evidence(
        heatmaps={"guided_top": heat, "guided_bottom": heat},
        influence=np.array([[2.0, -1.0], [0.0, 0.5]], np.float32),
    )
    record = layer_record(info, mined, [synthesis], field, data, "p", evidence)
    first, second = record.units
    assert [e.image for e in first.top_k] == [5, 4]  # 240 then 200 of 255
    assert [e.label for e in first.top_k] == ["dog", "dog"]
    assert first.label_counts == {"dog": 2} and first.label is None  # lift 1.5
    assert [e.image for e in second.top_k] == [0, 1]  # every image peaks at 0
    assert [e.image for e in first.bottom_k] == [0, 1]
    np.testing.assert_allclose([e.value for e in first.bottom_k], [40 / 255, 80 / 255])
    assert first.top_k[0].box.height == 1 and first.top_k[0].crop.item() == 240
    assert first.top_k[0].heatmaps["guided"].tolist() == [[255]]
    assert first.bottom_k[1].heatmaps["guided"].tolist() == [[0]]
    assert first.histogram.counts.sum() == 6
    assert first.histogram.edges[0] <= 40 / 255 < 240 / 255 < first.histogram.edges[-1]
    assert first.promotes == [ClassWeight("cat", 2.0)]
    assert first.suppresses == [ClassWeight("dog", -1.0)]
    assert second.promotes == [ClassWeight("dog", 0.5)] and second.suppresses == []
    assert first.stats["min"] == pytest.approx(40 / 255)
