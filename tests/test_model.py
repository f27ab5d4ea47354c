"""Model loading, layer description and the feature extractor."""

from __future__ import annotations

import logging

import keras
import numpy as np
import pytest

from atlas.errors import ModelError
from atlas.model import (
    describe_layers,
    feature_model,
    input_spec,
    load_model,
    select_layers,
)
from tests.helpers import digits_like_model


def test_describe_layers_lists_units_and_kinds():
    infos = {i.name: i for i in describe_layers(digits_like_model())}
    assert list(infos) == ["c1", "p1", "c2", "flat", "fc", "probs"]
    assert (infos["c1"].kind, infos["c1"].units) == ("conv", 4)
    assert (infos["fc"].kind, infos["fc"].units) == ("dense", 5)
    assert infos["probs"].uses_logits and not infos["fc"].uses_logits


def _image_model_with_conv1d():
    inputs = keras.Input((6, 6, 1))
    hidden = keras.layers.Conv2D(2, 3, name="c")(inputs)
    rows = keras.layers.Reshape((4, 8), name="rows")(hidden)
    seq = keras.layers.Conv1D(3, 2, name="seq")(rows)
    pooled = keras.layers.GlobalAveragePooling1D(name="gap")(seq)
    return keras.Model(inputs, keras.layers.Dense(2, name="d")(pooled))


def test_describe_layers_names_the_rank_3_layers_it_leaves_out(caplog):
    """C07: a Conv1D after a Reshape in an image model is not listed, and
    the log says which layers were left out and why."""
    with caplog.at_level(logging.INFO, logger="atlas.model"):
        infos = describe_layers(_image_model_with_conv1d())
    assert [info.name for info in infos] == ["c", "gap", "d"]
    assert (
        "left out 2 layer(s) whose output is not an image map (rank 4) or a "
        "vector (rank 2): rows (rank 3), seq (rank 3)"
    ) in caplog.text


def test_atlas_layers_says_which_layers_are_left_out(tmp_path, caplog):
    """C07: `atlas layers` shows the same line."""
    from atlas.cli import main

    _image_model_with_conv1d().save(tmp_path / "m.keras")
    (tmp_path / "site_config.toml").write_text(
        '[model]\npath = "m.keras"\n[data]\npath = "d.npz"\n[layers]\nnames = ["c"]\n'
    )
    (tmp_path / "d.npz").write_bytes(b"")
    with caplog.at_level(logging.INFO, logger="atlas.model"):
        assert main(["layers", "--config", str(tmp_path / "site_config.toml")]) == 0
    assert "rows (rank 3), seq (rank 3)" in caplog.text


def test_select_layers_unknown_name_suggests_close_names():
    infos = describe_layers(digits_like_model())
    with pytest.raises(ModelError, match=r"'c3'.*did you mean") as info:
        select_layers(infos, ["c1", "c3"])
    assert "'c1'" in str(info.value) and "'c2'" in str(info.value)


def test_feature_model_reads_logits_without_touching_the_model():
    model = digits_like_model()
    infos = select_layers(describe_layers(model), ["fc", "probs"])
    x = np.random.default_rng(0).random((3, 12, 12, 1)).astype(np.float32)
    fc, logits = feature_model(model, infos)(x)
    dense = model.get_layer("probs")
    expected = np.asarray(fc) @ dense.kernel.numpy() + dense.bias.numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    probabilities = model(x)
    np.testing.assert_allclose(
        probabilities, keras.ops.softmax(expected), rtol=1e-5, atol=1e-6
    )
    assert dense.activation.__name__ == "softmax"


def test_load_model_round_trips_keras_and_h5(tmp_path):
    model = digits_like_model()
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    x = np.ones((1, 12, 12, 1), np.float32)
    for name in ("m.keras", "m.h5"):
        loaded = load_model(tmp_path / name)
        np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def test_load_model_bad_inputs_give_actionable_messages(tmp_path):
    with pytest.raises(ModelError, match="model file not found"):
        load_model(tmp_path / "none.keras")
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    with pytest.raises(ModelError, match="not a Keras archive"):
        load_model(tmp_path / "junk.keras")
    (tmp_path / "text.h5").write_text("a text file, not HDF5")
    with pytest.raises(ModelError, match="cannot load model.*re-save"):
        load_model(tmp_path / "text.h5")
    saved = tmp_path / "exported"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ModelError, match="SavedModel directory.*model.keras"):
        load_model(saved)


def test_input_spec_variable_size_needs_the_config_key():
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    with pytest.raises(ModelError, match="model.input_shape"):
        input_spec(model)
    assert input_spec(model, [17, 19, 3]) == (17, 19, 3)


def test_load_model_unbuilt_sequential_names_the_key(tmp_path):
    unbuilt = keras.Sequential([keras.layers.Conv2D(2, 3), keras.layers.Flatten()])
    with pytest.raises(ModelError, match="model.input_shape"):
        from atlas.loading import _ensure_built

        _ensure_built(unbuilt, None)
    from atlas.loading import _ensure_built

    _ensure_built(unbuilt, (8, 8, 1))
    assert input_spec(unbuilt) == (8, 8, 1)
