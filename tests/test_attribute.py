"""Deconvnet and guided backpropagation: exact gradients on a hand-built
model, ReLU-like sites found by type and config (C22), an unchanged forward
pass and user model, and heatmaps cut at a box."""

from __future__ import annotations

from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from atlas.attribute import Attributor, heatmap, relu_sites
from atlas.model import describe_layers, select_layers
from atlas.records import Box

W = np.array([[1.0, 0.0], [-1.0, 0.5]], np.float32)  # h = W x
V = np.array([-1.0, 2.0], np.float32)  # y = v . relu(h)
SITES = {
    "fused": lambda h: h,
    "tf.nn.relu": lambda h: h,
    "ReLU": keras.layers.ReLU(),
    "ReLU6": keras.layers.ReLU(max_value=6),
    "Activation": keras.layers.Activation("relu"),
    "ops.relu": keras.ops.relu,
}
LEAKY = {"LeakyReLU": keras.layers.LeakyReLU(0.3)}


def _c22(site: str) -> keras.Model:
    """C22's model: h = W x, then the site, then y = v . relu(h)."""
    activation = {"fused": "relu", "tf.nn.relu": tf.nn.relu}.get(site)
    x = keras.Input((2,))
    h = keras.layers.Dense(2, use_bias=False, activation=activation, name="h")(x)
    h = {**SITES, **LEAKY}[site](h)
    y = keras.layers.Dense(1, use_bias=False, name="y")(h)
    model = keras.Model(x, y)
    model.get_layer("h").set_weights([W.T])
    model.get_layer("y").set_weights([V[:, None]])
    return model


def _gradient(model: keras.Model, name: str, method: str, x, unit=0, at=(0, 0)):
    info = select_layers(describe_layers(model), [name])[0]
    return Attributor(model, info, method)(x, [unit], [at])[0]


@pytest.mark.parametrize("site", list(SITES))  # all with slope 0 below 0
def test_c22_gradients_at_every_kind_of_relu_site(site):
    model = _c22(site)
    x = np.ones((1, 2), np.float32)
    assert _gradient(model, "y", "gradient", x).tolist() == [-1.0, 0.0]
    assert _gradient(model, "y", "deconvnet", x).tolist() == [-2.0, 1.0]
    assert _gradient(model, "y", "guided", x).tolist() == [0.0, 0.0]


def test_c22_leaky_relu_keeps_its_slope_where_guided_lets_it():
    # h = [1, -0.5]; slope 0.3 below 0; v = [-1, 2].
    model = _c22("LeakyReLU")
    x = np.ones((1, 2), np.float32)
    np.testing.assert_allclose(_gradient(model, "y", "gradient", x), [-1.6, 0.3])
    np.testing.assert_allclose(_gradient(model, "y", "deconvnet", x), [-2.0, 1.0])
    np.testing.assert_allclose(_gradient(model, "y", "guided", x), [-0.6, 0.3])


def _six_sites() -> keras.Model:
    """C22's model: six ReLU-like sites of six kinds, and one GELU."""
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="a")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="b")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c")(x)
    x = keras.layers.ReLU(max_value=6, name="d")(x)
    x = keras.layers.Activation("relu", name="e")(x)
    x = keras.layers.Conv2D(4, 3, name="f")(x)
    x = keras.layers.LeakyReLU(name="g")(x)
    x = keras.layers.Conv2D(3, 1, activation=tf.nn.relu, name="h")(x)
    x = keras.layers.Conv2D(3, 1, activation="gelu", name="s")(x)
    return keras.Model(inputs, x)


def test_relu_sites_are_found_by_type_and_config():
    model = _six_sites()
    assert relu_sites(model) == ["a", "b", "d", "e", "g", "h"]
    info = select_layers(describe_layers(model), ["s"])[0]
    attributor = Attributor(model, info, "guided")
    assert (attributor.sites, attributor.others) == (6, 1)


@pytest.mark.parametrize("method", ["deconvnet", "guided"])
def test_rewired_forward_is_bit_identical_and_the_model_untouched(method):
    keras.utils.set_random_seed(5)
    model = _six_sites()
    images = np.random.default_rng(0).normal(size=(3, 8, 8, 2)).astype(np.float32)
    weights = [w.copy() for w in model.get_weights()]
    layers = [layer.name for layer in model.layers]
    before = model(images, training=False).numpy()
    info = select_layers(describe_layers(model), ["s"])[0]
    attributor = Attributor(model, info, method)
    rewired = attributor.forward(tf.constant(images)).numpy()
    assert np.array_equal(rewired, before)
    attributor(images, [0, 1, 2], [[0, 0], [1, 2], [3, 3]])
    assert [layer.name for layer in model.layers] == layers
    assert all(
        np.array_equal(a, b) for a, b in zip(model.get_weights(), weights, strict=True)
    )
    assert np.array_equal(model(images, training=False).numpy(), before)


def test_plain_gradient_picks_each_sample_unit_at_its_position():
    keras.utils.set_random_seed(1)
    model = _six_sites()
    images = np.random.default_rng(2).normal(size=(2, 8, 8, 2)).astype(np.float32)
    units, positions = [2, 0], [[1, 3], [4, 0]]
    got = _gradient(model, "d", "gradient", images[:1], units[0], positions[0])
    both = Attributor(
        model, select_layers(describe_layers(model), ["d"])[0], "gradient"
    )
    batch = both(images, units, positions)
    extractor = keras.Model(model.inputs, model.get_layer("d").output)
    for i in range(2):
        image = tf.constant(images[i : i + 1])
        with tf.GradientTape() as tape:
            tape.watch(image)
            row, col = positions[i]
            value = extractor(image, training=False)[0, row, col, units[i]]
        expected = tape.gradient(value, image).numpy()[0]
        np.testing.assert_allclose(batch[i], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got, batch[0], rtol=1e-5, atol=1e-7)


def test_heatmap_is_the_channel_norm_cut_at_the_box():
    gradients = np.zeros((4, 5, 2), np.float32)
    gradients[1, 1] = (3.0, 4.0)  # norm 5: the strongest pixel
    gradients[2, 3] = (0.0, -1.0)  # norm 1
    cut = heatmap(gradients, Box(-1, 0, 3, 4))
    assert cut.shape == (4, 4) and cut.dtype == np.uint8
    expected = np.zeros((4, 4), np.uint8)
    expected[2, 1], expected[3, 3] = 255, 51
    np.testing.assert_array_equal(cut, expected)
    assert heatmap(np.zeros((4, 5, 2)), Box(0, 0, 2, 2)).tolist() == [[0, 0], [0, 0]]


def test_layer_heatmaps_are_cut_at_each_box_and_kept_in_the_store(
    tmp_path, monkeypatch
):
    import atlas.explain as explain
    from atlas.receptive import receptive_field

    model, data, info, mined = _mined_six_sites(tmp_path, "d", images=5, k=2)
    field = receptive_field(model, "d", (8, 8))
    ctx = _heatmap_context(model, data, tmp_path, ("guided",), top_k=2)
    maps = explain.layer_heatmaps(ctx, info, mined, field)
    assert sorted(maps) == ["guided_bottom", "guided_top"]
    image, (row, col) = mined.images[3, 1], mined.positions[3, 1]
    gradients = Attributor(model, info, "guided")(data.get([image]), [3], [[row, col]])
    box = field.box(row, col)
    expected = heatmap(gradients[0], box)
    assert expected.max() == 255
    placed = explain.place_heatmap(maps["guided_top"][3, 1], box, (8, 8))
    np.testing.assert_array_equal(placed, expected)
    for unit, rank in zip(*np.nonzero(mined.images >= 0), strict=True):
        box = field.box(*mined.positions[unit, rank])
        stored = maps["guided_top"][unit, rank]
        whole = explain.place_heatmap(stored, box, (8, 8))
        assert whole.shape == (box.height, box.width) and whole.max() in (0, 255)

    def fail(*args, **kwargs):
        raise AssertionError("recomputed stored heatmaps")

    monkeypatch.setattr(explain, "Attributor", fail)
    again = explain.layer_heatmaps(ctx, info, mined, field)
    np.testing.assert_array_equal(again["guided_top"], maps["guided_top"])


def test_heatmaps_are_stored_inside_the_image_and_placed_back_in_the_box():
    from atlas.explain import inside_box, place_heatmap

    box = Box(-3, 5, 4, 12)  # rows -3..3 and columns 5..11 on an 8x8 image
    assert inside_box(box, (8, 8)) == Box(0, 5, 4, 8)
    stored = np.zeros((8, 8), np.uint8)
    stored[:4, :3] = np.arange(12).reshape(4, 3)
    whole = place_heatmap(stored, box, (8, 8))
    assert whole.shape == (7, 7)
    np.testing.assert_array_equal(whole[3:, :3], np.arange(12).reshape(4, 3))
    assert whole.sum() == np.arange(12).sum()


def test_layer_heatmaps_log_the_count_of_rewired_relu_sites(tmp_path, caplog):
    """C22: the log counts the ReLU-like sites rewired for the maps: the
    model's six (relu, ReLU(), ReLU(max_value=6), Activation("relu"),
    LeakyReLU, tf.nn.relu), not the GELU."""
    import logging

    import atlas.explain as explain
    from atlas.receptive import receptive_field

    model, data, info, mined = _mined_six_sites(tmp_path, "s", images=3, k=1)
    ctx = _heatmap_context(model, data, tmp_path, ("deconvnet", "guided"), top_k=1)
    field = receptive_field(model, "s", (8, 8))
    with caplog.at_level(logging.INFO, logger="atlas.explain"):
        explain.layer_heatmaps(ctx, info, mined, field)
    assert len(relu_sites(model)) == 6
    assert (
        "heatmaps of s (deconvnet, guided): 6 ReLU-like site(s) rewritten, "
        "1 other nonlinear layer(s) keep their true gradient"
    ) in caplog.text


def _heatmap_context(model, data, folder, methods, top_k: int):
    """The few parts of a build context that explain.layer_heatmaps reads."""
    from atlas.store import Store

    settings = SimpleNamespace(
        mine=SimpleNamespace(heatmaps=methods, top_k=top_k),
        data=SimpleNamespace(batch_size=3),
        for_layer=lambda name: settings,  # no [layers.override]
    )
    return SimpleNamespace(
        model=model, digest="m", settings=settings, dataset=data, store=Store(folder)
    )


def _mined_six_sites(folder, layer: str, images: int, k: int):
    """The six-site model, `images` random images of it, and the top-`k`
    of `layer` mined from them."""
    from atlas.data import open_dataset
    from atlas.mine import mine
    from atlas.model import feature_model

    keras.utils.set_random_seed(3)
    model = _six_sites()
    pixels = np.random.default_rng(1).integers(0, 256, (images, 8, 8, 2), np.uint8)
    np.save(folder / "x.npy", pixels)
    data = open_dataset(folder / "x.npy", (8, 8, 2), (0.0, 1.0))
    info = select_layers(describe_layers(model), [layer])[0]
    mined = mine(feature_model(model, [info]), [info], data.pipeline(3), k=k)[layer]
    return model, data, info, mined
