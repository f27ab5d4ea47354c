"""The compiled ascent: it raises objectives under every preset, is
batch-independent and deterministic, revives inactive ReLU units, makes
negative and diversity views, traces once per shape in bounded memory, and
copes with mixed precision, any input size and any channel count."""

from __future__ import annotations

import dataclasses
import gc
import os
import tracemalloc

import keras
import numpy as np
import pytest
from scipy import ndimage

from atlas.errors import ConfigError, ModelError
from atlas.model import ascent_model, describe_layers, layer_output, select_layers
from atlas.records import LayerInfo
from atlas.visualize import (
    PRESETS,
    ViewSet,
    synthesize,
    synthesize_views,
    tracing_count,
)
from atlas.visualize import step as step_module
from atlas.visualize.objectives import layer_objectives, similarity
from tests.helpers import digits_like_model

STEPS = 120
CANVAS = (12, 12, 1)


@pytest.fixture(scope="module")
def model():
    return digits_like_model()


def _info(model, name):
    return select_layers(describe_layers(model), [name])[0]


def _run(model, name, units, preset="yosinski-3-jitter", views=None, **options):
    info = _info(model, name)
    options = {"steps": STEPS, "chunk": 8, "seed": 0, **options}
    run = synthesize_views if views is not None else synthesize
    extra = {"views": views} if views is not None else {}
    return run(
        ascent_model(model, info),
        info,
        units,
        PRESETS[preset],
        canvas=options.pop("canvas", CANVAS),
        input_range=(0.0, 1.0),
        **extra,
        **options,
    )


def _dataset_objective(model, name):
    info = _info(model, name)
    # Smooth random images stand in for a dataset: like real photographs,
    # and unlike white noise, most of their energy is at low frequencies.
    noise = np.random.default_rng(0).normal(size=(64, *CANVAS))
    smooth = ndimage.gaussian_filter(noise, sigma=(0, 1.5, 1.5, 0))
    images = ((smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)
    output = keras.Model(model.inputs[0], layer_output(model, info))(images)
    return np.asarray(layer_objectives(output, info.kind, "channel"))


@pytest.mark.parametrize("name", ["c2", "fc", "probs"])
@pytest.mark.parametrize(
    "preset", ["yosinski-3", "yosinski-3-jitter", "none", "l2", "fourier"]
)
def test_synthesize_raises_every_live_unit(model, name, preset):
    data = _dataset_objective(model, name)
    units = range(data.shape[1])
    result = _run(model, name, units, preset=preset)
    for unit in units:
        if data[:, unit].max() <= 0:
            continue
        assert result.final[unit] > result.start[unit], unit
        assert result.final[unit] > data[:, unit].mean(), unit


def test_synthesize_views_negative_lowers_and_diversity_differs(model):
    views = ViewSet(negative=True, diversity=2)
    result = _run(model, "c2", range(6), "fourier", views=views)
    assert list(result) == ["fourier", "negative", "diversity-1", "diversity-2"]
    best, worst = result["fourier"], result["negative"]
    assert np.all(worst.final <= worst.start) and np.all(worst.final <= best.final)
    # Below the ReLU's 0 the negative image keeps lowering the pre-activation.
    layer_model = ascent_model(model, _info(model, "c2"))
    lowest, highest = (
        layer_objectives(layer_model(view.images)[1], "conv", "channel").numpy()
        for view in (worst, best)
    )
    rows = np.arange(6)
    assert np.all(lowest[rows, rows] < highest[rows, rows] - 0.1)
    one, two = result["diversity-1"], result["diversity-2"]
    assert np.all(np.abs(one.images - two.images).max(axis=(1, 2, 3)) > 0.05)
    for view in (one, two):
        assert view.key.startswith("diversity-") and view.preset == "fourier"
        assert np.all(view.final >= view.start) and np.any(view.final > view.start)


def test_diversity_penalty_pushes_a_unit_images_apart(model, monkeypatch):
    def spread(weight):
        monkeypatch.setattr(step_module, "DIVERSITY_WEIGHT", weight)
        info = _info(model, "c2")
        result = synthesize_views(
            ascent_model(model, info),  # a new model: a new compiled program
            info,
            [1, 3],
            PRESETS["yosinski-3"],
            canvas=CANVAS,
            input_range=(0.0, 1.0),
            views=ViewSet(diversity=3),
            steps=STEPS,
        )
        layer = keras.Model(model.inputs[0], model.get_layer("c2").output)
        images = [result[f"diversity-{i}"].images for i in (1, 2, 3)]
        features = np.stack([layer(im).numpy() for im in images], axis=1)
        return float(np.mean(similarity(features)))

    assert spread(4.0) < spread(0.0) - 0.02


@pytest.mark.parametrize("preset", ["yosinski-3-jitter", "fourier"])
def test_synthesize_image_does_not_depend_on_its_batch(model, preset):
    views = ViewSet(negative=True, diversity=2)
    first = _run(model, "c2", [0, 1, 2], preset, views=views)
    second = _run(model, "c2", [5, 4, 2], preset, views=views)
    for key in first:
        np.testing.assert_array_equal(first[key].images[2], second[key].images[2])


@pytest.mark.parametrize("preset", ["yosinski-3-jitter", "fourier"])
def test_synthesize_same_seed_same_bytes_other_seed_other_image(model, preset):
    one = _run(model, "fc", range(5), preset)
    two = _run(model, "fc", range(5), preset)
    assert one.images.tobytes() == two.images.tobytes()
    other = _run(model, "fc", range(5), preset, seed=1)
    assert not np.array_equal(one.images, other.images)


def test_synthesize_images_stay_in_the_input_range(model):
    for preset in ("none", "fourier"):
        result = _run(model, "probs", range(3), preset=preset)
        assert result.images.dtype == np.float32
        assert result.images.min() >= 0.0 and result.images.max() <= 1.0
        assert np.isfinite(result.images).all()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_synthesize_revives_a_dormant_unit_under_every_preset(preset):
    keras.utils.set_random_seed(0)
    inputs = keras.Input(CANVAS)
    conv = keras.layers.Conv2D(2, 3, activation="relu", name="c")
    model = keras.Model(inputs, conv(inputs))
    kernel = np.zeros((3, 3, 1, 2), np.float32)
    kernel[1, 1, 0, :] = 1.0
    # Unit 0 fires only above 0.8 (dormant); unit 1 never fires (dead).
    conv.set_weights([kernel, np.array([-0.8, -5.0], np.float32)])
    layer_model = ascent_model(model, _info(model, "c"))
    result = synthesize(
        layer_model,
        _info(model, "c"),
        [0, 1],
        PRESETS[preset],
        canvas=CANVAS,
        input_range=(0.0, 1.0),
        steps=300,
    )
    assert result.start[0] == 0.0 and result.start[1] == 0.0
    assert result.final[1] == 0.0
    pre = layer_objectives(layer_model(result.images)[1], "conv", "channel")
    assert pre.numpy()[0, 0] > -0.8 + 0.5  # climbed from the centre, 0.5
    if preset != "yosinski-2":
        # yosinski-2 decays 30 % a step, which holds every pixel within a
        # few levels of its centre: it climbs, but cannot reach 0.8.
        assert result.peak[0] > 0.0


def _wide_model():
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(64, 3, name="wide")(inputs))
    info = select_layers(describe_layers(model), ["wide"])[0]
    return ascent_model(model, info), info


def _wide(layer_model, info, units, preset="yosinski-3"):
    return synthesize(
        layer_model,
        info,
        units,
        dataclasses.replace(PRESETS[preset], steps=3),
        canvas=(8, 8, 1),
        input_range=(0.0, 1.0),
        chunk=8,
    )


@pytest.mark.parametrize("preset", ["yosinski-3", "fourier"])
def test_synthesize_traces_once_for_64_units_of_a_layer(preset):
    layer_model, info = _wide_model()
    _wide(layer_model, info, range(64), preset)
    assert tracing_count(layer_model) == 1


def _resident_bytes() -> int:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="Linux only")
def test_memory_after_64_units_is_about_the_memory_after_8():
    layer_model, info = _wide_model()
    _wide(layer_model, info, range(8))  # compile and warm up
    gc.collect()
    tracemalloc.start()
    resident = _resident_bytes()
    _wide(layer_model, info, range(8))
    after_8 = tracemalloc.get_traced_memory()[0], _resident_bytes() - resident
    _wide(layer_model, info, range(64))
    gc.collect()
    after_64 = tracemalloc.get_traced_memory()[0], _resident_bytes() - resident
    tracemalloc.stop()
    assert after_64[0] - after_8[0] < 2 * 2**20  # Python objects
    assert after_64[1] - after_8[1] < 64 * 2**20  # all memory, loosely


def test_mixed_precision_objective_is_float32_and_the_policy_is_restored():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = digits_like_model()
        result = _run(model, "fc", range(3), "fourier", steps=20)
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert result.images.dtype == np.float32 and np.isfinite(result.images).all()
    assert result.final.dtype == np.float32 and np.isfinite(result.final).all()
    assert np.all(result.final > result.start)


def test_variable_input_size_uses_an_odd_canvas_and_data_colours():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((None, None, 3))
    hidden = keras.layers.Conv2D(4, 3, name="c")(inputs)
    model = keras.Model(inputs, hidden)
    info = select_layers(describe_layers(model), ["c"])[0]
    mean = np.random.default_rng(0).uniform(0.3, 0.7, (11, 13, 3))
    covariance = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]) / 50
    result = synthesize(
        ascent_model(model, info),
        info,
        range(4),
        PRESETS["fourier"],
        canvas=(11, 13, 3),
        input_range=(0.0, 1.0),
        mean=mean,
        covariance=covariance,
        steps=30,
    )
    assert result.images.shape == (4, 11, 13, 3)
    assert np.all(result.final > result.start)


def test_four_channel_model_gets_its_own_colour_matrix():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((6, 6, 4))
    model = keras.Model(inputs, keras.layers.Dense(2, name="d")(inputs))
    info = select_layers(describe_layers(model), ["d"])[0]
    result = synthesize(
        ascent_model(model, info),
        info,
        [0, 1],
        PRESETS["fourier"],
        canvas=(6, 6, 4),
        input_range=(0.0, 1.0),
        covariance=np.eye(4) * 0.05,
        steps=20,
    )
    assert result.images.shape == (2, 6, 6, 4) and np.all(result.final > result.start)


def test_sequence_models_fail_before_any_work():
    inputs = keras.Input((16, 2))
    model = keras.Model(inputs, keras.layers.Conv1D(3, 3, name="seq")(inputs))
    info = LayerInfo("seq", "Conv1D", (None, 14, 3), 3, "conv", "linear")
    with pytest.raises(ModelError, match=r"input has shape \(None, 16, 2\)"):
        synthesize(
            model,
            info,
            [0],
            PRESETS["none"],
            canvas=(16, 1, 2),
            input_range=(0.0, 1.0),
        )


def _conv_pool_conv():
    inputs = keras.Input((None, None, 3))
    hidden = keras.layers.Conv2D(4, 3, name="c")(inputs)
    hidden = keras.layers.MaxPooling2D(2)(hidden)
    return keras.Model(inputs, keras.layers.Conv2D(3, 3, name="c2")(hidden))


def test_canvas_too_small_names_visualize_size_and_the_smallest_that_works():
    """C03: a 7x7 canvas into conv 3, pool 2, conv 3 leaves nothing for c2;
    the error names visualize.size, the value and 8x8, the smallest that
    works, before any ascent step is compiled."""
    model = _conv_pool_conv()
    info = select_layers(describe_layers(model), ["c2"])[0]
    layer_model = ascent_model(model, info)
    with pytest.raises(ConfigError, match=r"visualize.size = \[7, 7\].*\[8, 8\]"):
        synthesize(
            layer_model,
            info,
            [0],
            PRESETS["none"],
            canvas=(7, 7, 3),
            input_range=(0.0, 1.0),
            steps=2,
        )
    assert tracing_count(layer_model) == 0
    result = synthesize(
        layer_model,
        info,
        [0],
        PRESETS["none"],
        canvas=(8, 8, 3),
        input_range=(0.0, 1.0),
        steps=2,
    )
    assert result.images.shape == (1, 8, 8, 3)


def test_four_channel_build_decorrelates_by_the_data_covariance(tmp_path, monkeypatch):
    """C05: a 4-channel model's ascent mixes colours by the data's own
    covariance: the matrix M used is not the identity, and M M^T is the
    covariance of the data's pixels (up to M's scale)."""
    from atlas.cli import main
    from atlas.visualize import ascent, colour

    keras.utils.set_random_seed(6)
    inputs = keras.Input((6, 6, 4))
    keras.Model(inputs, keras.layers.Conv2D(2, 3, name="c")(inputs)).save(
        tmp_path / "m.keras"
    )
    rng = np.random.default_rng(6)
    base = rng.integers(0, 256, (10, 6, 6, 1))
    other = rng.integers(0, 256, (10, 6, 6, 1))
    pixels = np.concatenate([base, base // 2 + 60, 255 - base, other], axis=-1)
    np.save(tmp_path / "d.npy", pixels.astype(np.uint8))
    (tmp_path / "site_config.toml").write_text(
        '[model]\npath = "m.keras"\ninput_range = [0.0, 1.0]\n'
        '[data]\npath = "d.npy"\n[layers]\nnames = ["c"]\n'
        '[visualize]\npreset = "fourier"\nprogression = []\n'
        "[mine]\ntop_k = 1\nheatmaps = []\n"
    )
    used = []
    real = colour.decorrelation_matrix

    def spy(covariance, channels):
        matrix = real(covariance, channels)
        used.append(matrix)
        return matrix

    monkeypatch.setattr(ascent.colours, "decorrelation_matrix", spy)
    monkeypatch.setenv("ATLAS_MAX_STEPS", "2")
    assert main(["build", "--config", str(tmp_path / "site_config.toml")]) == 0

    assert used and all(np.array_equal(m, used[0]) for m in used)
    matrix = used[0].astype(np.float64)
    assert matrix.shape == (4, 4)
    assert not np.allclose(matrix, np.eye(4), atol=0.05)
    flat = (pixels / 255.0).reshape(-1, 4)
    data_covariance = np.cov(flat, rowvar=False, bias=True)
    mixed = matrix @ matrix.T
    scale = data_covariance[0, 0] / mixed[0, 0]
    np.testing.assert_allclose(mixed * scale, data_covariance, atol=1e-5)
