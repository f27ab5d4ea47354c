"""What `atlas.explain` says while it works out a layer's influence on the
classes, on a hand-built model whose output layer is called "logits"."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import keras
import numpy as np

from atlas.data import open_dataset
from atlas.explain import layer_influence
from atlas.model import describe_layers, select_layers
from atlas.store import Store


def test_layer_influence_log_names_layer_and_output_layer(tmp_path, caplog):
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 1, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(3, name="fc")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="logits")(x))
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 4, 4, 1), np.uint8))
    ctx = SimpleNamespace(
        model=model,
        digest="test",
        dataset=open_dataset(tmp_path / "d.npz", (4, 4, 1), (0.0, 1.0)),
        store=Store(tmp_path / "store"),
        settings=SimpleNamespace(data=SimpleNamespace(batch_size=2)),
    )
    info = select_layers(describe_layers(model), ["fc"])[0]

    with caplog.at_level(logging.INFO, logger="atlas.explain"):
        weights = layer_influence(ctx, info)

    assert weights.shape == (3, 2)
    assert [r.getMessage() for r in caplog.records] == [
        "influence of layer 'fc' on the classes (output layer 'logits')"
    ]
