"""Streaming top-k mining against brute force on hand-built models."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from atlas.errors import DataError
from atlas.mine import mine, spatial_maxima
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


def _brute_force(maps: np.ndarray, k: int):
    """Top-k per unit by sorting every image's maximum, ties by index."""
    flat = maps.reshape(len(maps), -1, maps.shape[-1])
    best = flat.max(axis=1)
    where = flat.argmax(axis=1)
    width = maps.shape[2] if maps.ndim == 4 else 1
    result = []
    for unit in range(best.shape[1]):
        order = np.lexsort((np.arange(len(best)), -best[:, unit]))[:k]
        positions = [divmod(int(where[i, unit]), width) for i in order]
        result.append((order.tolist(), best[order, unit], positions))
    return result


def _mine(model, names, images, k, batch):
    infos = select_layers(describe_layers(model), names)
    batches = (images[i : i + batch] for i in range(0, len(images), batch))
    return infos, mine(feature_model(model, infos), infos, batches, k=k)


@pytest.mark.parametrize("batch", [1, 4, 7, 50])
def test_mine_equals_brute_force_across_batch_boundaries(batch):
    rng = np.random.default_rng(3)
    images = rng.normal(size=(23, 5, 6, 1)).astype(np.float32)
    images[5] = images[17]  # a tie: the lower index must rank first
    model = _conv_model()
    infos, mined = _mine(model, ["c", "d"], images, k=4, batch=batch)
    for info in infos:
        extractor = keras.Model(model.inputs, model.get_layer(info.name).output)
        maps = extractor.predict(images, verbose=0)
        for unit, (order, values, positions) in enumerate(_brute_force(maps, 4)):
            got = mined[info.name]
            assert got.images[unit].tolist() == order
            np.testing.assert_allclose(got.values[unit], values, rtol=1e-6)
            assert [tuple(p) for p in got.positions[unit].tolist()] == positions
        flat = maps.reshape(len(maps), -1, maps.shape[-1]).max(axis=1)
        np.testing.assert_allclose(mined[info.name].mean, flat.mean(0), rtol=1e-5)
        np.testing.assert_allclose(mined[info.name].max, flat.max(0), rtol=1e-6)
        assert mined[info.name].active_fraction.tolist() == (flat > 0).mean(0).tolist()
        assert mined[info.name].count == 23


def test_mine_ties_rank_the_lower_image_first():
    images = np.ones((6, 5, 6, 1), np.float32)
    _, mined = _mine(_conv_model(), ["c"], images, k=3, batch=4)
    assert mined["c"].images[0].tolist() == [0, 1, 2]
    assert mined["c"].positions[0].tolist() == [[0, 0]] * 3


def test_mine_fewer_images_than_k_marks_unused_slots():
    images = np.zeros((2, 5, 6, 1), np.float32)
    _, mined = _mine(_conv_model(), ["d"], images, k=4, batch=8)
    assert mined["d"].images[0].tolist() == [0, 1, -1, -1]
    assert np.isneginf(mined["d"].values[0, 2:]).all()


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
