"""Views of a unit (negative, diversity), chunk sizes from the memory
budget, and the quality figures every view gets."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from atlas.assemble import NO_STRUCTURE_LEVELS, quality, stats
from atlas.errors import ConfigError
from atlas.records import Mining, Synthesis
from atlas.site.facts import QUALITY_LABELS, STATS_LABELS
from atlas.visualize import ViewSet, chunk_size
from atlas.visualize.views import BYTES_PER_ACTIVATION, VIEW_STRIDE, activation_values


def test_view_set_lays_out_samples_view_by_view():
    views = ViewSet(negative=True, diversity=2)
    assert views.per_unit == 4 and views.first_diverse == 2
    assert views.names("fourier") == [
        "fourier",
        "negative",
        "diversity-1",
        "diversity-2",
    ]
    units, keys, signs = views.layout(np.array([7, 3]))
    np.testing.assert_array_equal(units, [7, 3] * 4)
    np.testing.assert_array_equal(keys % VIEW_STRIDE, [7, 3] * 4)
    np.testing.assert_array_equal(keys // VIEW_STRIDE, [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(signs, [1, 1, -1, -1, 1, 1, 1, 1])


def test_view_set_rejects_a_diversity_of_one():
    with pytest.raises(ConfigError, match=r"visualize.diversity"):
        ViewSet(diversity=1)


def _conv_model():
    inputs = keras.Input((8, 8, 1))
    hidden = keras.layers.Conv2D(4, 3, padding="same", name="c")(inputs)
    return keras.Model(inputs, hidden)


def test_activation_values_count_every_layer_output():
    # The input (8 * 8 * 1) and the conv output (8 * 8 * 4).
    assert activation_values(_conv_model(), (8, 8, 1)) == 64 + 256
    inputs = keras.Input((None, None, 2))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs))
    assert activation_values(model, (5, 7, 2)) == 5 * 7 * 2 + 5 * 7 * 3


def test_chunk_size_follows_the_memory_budget():
    model = _conv_model()
    per_sample = (64 + 256) * BYTES_PER_ACTIVATION
    budget = 10 * per_sample / 2**20
    assert chunk_size(model, (8, 8, 1), 1, budget, limit=64) == 10
    assert chunk_size(model, (8, 8, 1), 2, budget, limit=64) == 5
    assert chunk_size(model, (8, 8, 1), 1, budget, limit=4) == 4
    assert chunk_size(model, (8, 8, 1), 1, 1e-9, limit=64) == 1
    with pytest.raises(ConfigError, match=r"visualize.memory_mb"):
        chunk_size(model, (8, 8, 1), 1, 0, limit=64)


def _mining(best: float, weakest: float = 0.0) -> Mining:
    one = np.ones(1)
    return Mining(
        values=np.array([[best]], np.float32),
        images=np.zeros((1, 1), np.int64),
        positions=np.zeros((1, 1, 2), np.int64),
        mean=one * best / 2,
        max=np.array([best], np.float32),
        active_fraction=one,
        count=1,
        bottom_values=np.array([[weakest]], np.float32),
    )


def _synthesis(view: str, peak: float, structure: float) -> Synthesis:
    return Synthesis(
        preset="fourier",
        units=np.array([0]),
        images=np.zeros((1, 2, 2, 1), np.float32),
        start=np.array([0.1]),
        final=np.array([peak / 2]),
        layer_max=np.array([True]),
        peak=np.array([peak]),
        structure=np.array([structure]),
        view="" if view == "fourier" else view,
    )


def test_quality_ratio_compares_peaks_and_flags_weak_images():
    good = quality(_mining(4.0), _synthesis("fourier", 3.0, 30.0), 0)
    assert good["ratio"] == pytest.approx(0.75) and good["layer_max"]
    assert good["view"] == "fourier" and not good["low"]
    weak = quality(_mining(4.0), _synthesis("fourier", 1.0, 30.0), 0)
    assert weak["ratio"] == pytest.approx(0.25) and weak["low"]


def test_quality_flags_no_structure_and_dead_units():
    flat = quality(_mining(4.0), _synthesis("fourier", 4.0, NO_STRUCTURE_LEVELS / 2), 0)
    assert flat["no_structure"] and flat["low"]
    dead = quality(_mining(0.0), _synthesis("fourier", 0.0, 30.0), 0)
    assert dead["dead"] and dead["ratio"] is None and dead["low"]


def test_quality_of_a_negative_view_has_no_ratio_but_the_dataset_minimum():
    negative = quality(
        _mining(4.0, weakest=-1.5), _synthesis("negative", -3.0, 30.0), 0
    )
    assert negative["view"] == "negative" and negative["ratio"] is None
    assert negative["dataset_min"] == pytest.approx(-1.5)
    assert not negative["low"]


def test_quality_of_every_view_carries_the_dataset_minimum():
    mining = _mining(4.0, weakest=-1.5)
    for view in ("fourier", "negative"):
        found = quality(mining, _synthesis(view, 3.0, 30.0), 0)
        assert found["dataset_min"] == pytest.approx(-1.5)
        assert found["dataset_min"] == stats(mining, 0)["min"]


def test_quality_without_a_bottom_k_has_no_dataset_minimum():
    mining = dataclasses.replace(_mining(4.0), bottom_values=None)
    found = quality(mining, _synthesis("fourier", 3.0, 30.0), 0)
    assert found["dataset_min"] is None and "min" not in stats(mining, 0)


def test_every_figure_of_a_unit_has_a_label():
    mining = _mining(4.0, weakest=-1.5)
    found = quality(mining, _synthesis("fourier", 3.0, 30.0), 0)
    assert set(found) <= set(QUALITY_LABELS)
    assert set(stats(mining, 0)) <= set(STATS_LABELS)
