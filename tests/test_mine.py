"""Streaming mining against brute force on hand-built models: top-k and
bottom-k across batch and merge boundaries and ties, statistics,
histograms, and activations equal to the model's own (C08)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import atlas.maxima
import atlas.mine
from atlas.data import open_dataset
from atlas.errors import DataError
from atlas.maxima import spatial_maxima
from atlas.mine import mine
from atlas.model import describe_layers, feature_model, select_layers


def _conv_model() -> keras.Model:
    """A conv layer whose units are fixed, known functions of the pixels."""
    inputs = keras.Input((5, 6, 1))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="c")
    conv(inputs)
    conv.set_weights([np.array([1.0, -1.0, 0.0]).reshape(1, 1, 1, 3)])
    dense = keras.layers.Dense(2, use_bias=False, name="d")
    outputs = dense(keras.layers.Flatten()(conv.output))
    kernel = np.zeros((90, 2), np.float32)
    kernel[0::3, 0] = 1.0  # unit 0: the sum of unit c/0 over positions
    kernel[1::3, 1] = 0.5
    dense.set_weights([kernel])
    return keras.Model(inputs, outputs)


def _brute_force(maps: np.ndarray, k: int, bottom: bool = False):
    """Ranked (images, values, positions) per unit by sorting every image's
    maximum (weakest first for `bottom`), ties by lower image index."""
    flat = maps.reshape(len(maps), -1, maps.shape[-1])
    best = flat.max(axis=1)
    where = flat.argmax(axis=1)
    width = maps.shape[2] if maps.ndim == 4 else 1
    result = []
    for unit in range(best.shape[1]):
        key = best[:, unit] if bottom else -best[:, unit]
        order = np.lexsort((np.arange(len(best)), key))[:k]
        positions = [divmod(int(where[i, unit]), width) for i in order]
        result.append((order.tolist(), best[order, unit], positions))
    return result


def _mine(model, names, images, k, batch, bins=32):
    infos = select_layers(describe_layers(model), names)
    batches = (images[i : i + batch] for i in range(0, len(images), batch))
    return infos, mine(feature_model(model, infos), infos, batches, k=k, bins=bins)


def _check_ranking(got_images, got_values, got_positions, expected) -> None:
    for unit, (order, values, positions) in enumerate(expected):
        assert got_images[unit].tolist() == order
        np.testing.assert_allclose(got_values[unit], values, rtol=1e-6)
        assert [tuple(p) for p in got_positions[unit].tolist()] == positions


@pytest.mark.parametrize(
    "batch, merge, dense",
    [(1, 5, 1.0), (4, 4, -1.0), (7, 512, 0.25), (50, 16, 1.0), (3, 6, -1.0)],
)
def test_mine_equals_brute_force_across_batch_boundaries(
    batch, merge, dense, monkeypatch
):
    # dense -1: every position from column maxima; 1: only the positions of
    # pairs that may still enter a ranking, each read from its row.
    monkeypatch.setattr(atlas.mine, "MERGE_IMAGES", merge)
    monkeypatch.setattr(atlas.maxima, "DENSE_SHARE", dense)
    rng = np.random.default_rng(3)
    images = rng.normal(size=(23, 5, 6, 1)).astype(np.float32)
    images[5] = images[17]  # a tie: the lower index must rank first
    model = _conv_model()
    infos, mined = _mine(model, ["c", "d"], images, k=4, batch=batch)
    for info in infos:
        extractor = keras.Model(model.inputs, model.get_layer(info.name).output)
        maps = extractor.predict(images, verbose=0)
        got = mined[info.name]
        top, low = _brute_force(maps, 4), _brute_force(maps, 4, bottom=True)
        _check_ranking(got.images, got.values, got.positions, top)
        _check_ranking(got.bottom_images, got.bottom_values, got.bottom_positions, low)
        flat = maps.reshape(len(maps), -1, maps.shape[-1]).max(axis=1)
        np.testing.assert_allclose(got.mean, flat.mean(0), rtol=1e-5)
        np.testing.assert_allclose(got.max, flat.max(0), rtol=1e-6)
        assert got.active_fraction.tolist() == (flat > 0).mean(0).tolist()
        assert got.count == 23


def _histogram_by_hand(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    width = edges[1] - edges[0]
    return np.bincount(
        np.floor((values - edges[0]) / width).astype(int), minlength=len(edges) - 1
    )


def test_mine_histogram_is_exact_and_independent_of_batching():
    rng = np.random.default_rng(8)
    images = (rng.normal(size=(40, 5, 6, 1)) * [[[[50.0]]]]).astype(np.float32)
    images[:, :, :, 0] += np.linspace(-3, 400, 40)[:, None, None]
    model = _conv_model()
    results = [
        _mine(model, ["c"], images, 3, batch, bins=8)[1]["c"] for batch in (3, 40)
    ]
    maps = keras.Model(model.inputs, model.get_layer("c").output).predict(
        images, verbose=0
    )
    maxima = maps.reshape(40, -1, 3).max(axis=1)
    first = results[0]
    for unit in range(3):
        edges = first.hist_edges[unit]
        width = edges[1] - edges[0]
        assert np.log2(width) == np.round(np.log2(width))  # a power of two
        assert edges[0] <= maxima[:, unit].min() and maxima[:, unit].max() < edges[-1]
        expected = _histogram_by_hand(maxima[:, unit].astype(np.float64), edges)
        assert first.hist_counts[unit].tolist() == expected.tolist()
    np.testing.assert_array_equal(results[1].hist_counts, first.hist_counts)
    np.testing.assert_array_equal(results[1].hist_edges, first.hist_edges)


def test_mine_ties_rank_the_lower_image_first():
    images = np.ones((6, 5, 6, 1), np.float32)
    _, mined = _mine(_conv_model(), ["c"], images, k=3, batch=4)
    assert mined["c"].images[0].tolist() == [0, 1, 2]
    assert mined["c"].bottom_images[0].tolist() == [0, 1, 2]
    assert mined["c"].positions[0].tolist() == [[0, 0]] * 3


def test_mine_fewer_images_than_k_marks_unused_slots():
    images = np.zeros((2, 5, 6, 1), np.float32)
    _, mined = _mine(_conv_model(), ["d"], images, k=4, batch=8)
    assert mined["d"].images[0].tolist() == [0, 1, -1, -1]
    assert np.isneginf(mined["d"].values[0, 2:]).all()
    assert mined["d"].bottom_images[0].tolist() == [0, 1, -1, -1]
    assert np.isposinf(mined["d"].bottom_values[0, 2:]).all()


def test_mine_empty_dataset_is_a_data_error():
    with pytest.raises(DataError, match="no images"):
        _mine(_conv_model(), ["c"], np.zeros((0, 5, 6, 1), np.float32), 2, 4)


def test_spatial_maxima_finds_value_and_row_major_position():
    output = np.zeros((1, 3, 4, 2), np.float32)
    output[0, 2, 1, 0] = 5.0
    output[0, 0, 3, 1] = np.nan
    output[0, 1, 2, 1] = -1.0
    output[0, :, :, 1] -= 2.0
    output[0, 1, 2, 1] = -0.5
    values, positions = spatial_maxima(output)
    assert values.numpy().tolist() == [[5.0, -0.5]]
    assert positions.numpy().tolist() == [[[2, 1], [1, 2]]]


def test_spatial_maxima_ties_in_other_rows_and_columns_take_the_first():
    # The maximum at (0, 3) and (2, 0): the first row and the first column
    # holding it meet at (0, 0), which does not; row-major first is (0, 3).
    output = np.zeros((2, 3, 4, 1), np.float32)
    output[0, 0, 3, 0] = output[0, 2, 0, 0] = 7.0
    output[1] = np.nan
    values, positions = spatial_maxima(output)
    assert values.numpy().ravel().tolist() == [7.0, -np.inf]
    assert positions.numpy()[0, 0].tolist() == [0, 3]


def test_mined_activations_equal_the_model_on_raw_pixels(tmp_path):
    # C08: the model rescales uint8 pixels itself; the data is not scaled
    # again, and mining reads exactly what the model computes.
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Rescaling(1 / 255, name="scale")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (20, 6, 6, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", pixels)
    data = open_dataset(tmp_path / "x.npy", (6, 6, 3), (0.0, 255.0))
    infos = select_layers(describe_layers(model), ["conv"])
    batches = data.pipeline(8, scaled=False)  # uint8, scaled in the step
    extractor = feature_model(model, infos)
    mined = mine(extractor, infos, batches, k=3, input_range=(0.0, 255.0))["conv"]
    maps = model.predict(pixels.astype(np.float32), verbose=0)
    best = maps.reshape(20, -1, 4).max(axis=1)
    for unit in range(4):
        order = np.lexsort((np.arange(20), -best[:, unit]))[:3]
        assert mined.images[unit].tolist() == order.tolist()
        np.testing.assert_allclose(mined.values[unit], best[order, unit], atol=1e-5)


def test_two_output_heads_load_list_and_mine_each_head(tmp_path):
    """C06: a model with two output heads loads, lists the layers of both
    heads, and mines a layer of each with the values of the model's own
    outputs."""
    from atlas.model import load_model

    keras.utils.set_random_seed(4)
    inputs = keras.Input((6, 6, 2))
    trunk = keras.layers.Conv2D(3, 3, activation="relu", name="trunk")(inputs)
    seg = keras.layers.Conv2D(2, 1, name="seg")(trunk)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(trunk)
    reg = keras.layers.Dense(4, name="reg")(pooled)
    keras.Model(inputs, [seg, reg]).save(tmp_path / "heads.keras")
    model = load_model(tmp_path / "heads.keras")
    names = [info.name for info in describe_layers(model)]
    assert sorted(names) == ["gap", "reg", "seg", "trunk"]

    images = np.random.default_rng(4).normal(size=(13, 6, 6, 2)).astype(np.float32)
    infos, mined = _mine(model, ["seg", "reg"], images, k=3, batch=5)
    own_seg, own_reg = model.predict(images, verbose=0)
    for info, own in zip(infos, (own_seg, own_reg), strict=True):
        got = mined[info.name]
        _check_ranking(got.images, got.values, got.positions, _brute_force(own, 3))
        maxima = own.reshape(len(own), -1, own.shape[-1]).max(axis=1)
        np.testing.assert_allclose(got.max, maxima.max(0), rtol=1e-6)
