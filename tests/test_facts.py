"""Numbers and facts as pages show them."""

from __future__ import annotations

import numpy as np
import pytest

from atlas.records import LayerInfo
from atlas.site.facts import (
    format_number,
    layer_facts,
    layer_settings_facts,
    percent,
    quality_facts,
    shape_text,
    stats_facts,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (True, "yes"),
        (12345, "12,345"),
        (np.int64(7), "7"),
        (0.0, "0"),
        (2.0, "2"),
        (1234.5, "1,230"),
        (999.96, "1,000"),
        (0.012345, "0.0123"),
        (-0.5, "-0.5"),
        (np.float32(3.14159), "3.14"),
        (0.001, "0.001"),
        (0.000123456, "1.23e-4"),
        (123456789.0, "1.23e8"),
        (float("inf"), "∞"),
        (float("nan"), "not a number"),
        ("text", "text"),
    ],
)
def test_format_number_three_significant_digits(value, text):
    assert format_number(value) == text


def test_percent_fraction_three_digits():
    assert [percent(2 / 3), percent(1.0), percent(None)] == ["66.7%", "100%", "—"]


def test_shape_text_names_unknown_sizes():
    assert shape_text((None, 12, 12, 4)) == "(batch, 12, 12, 4)"
    assert shape_text((None, None, None, 3)) == "(batch, any, any, 3)"


def test_quality_facts_known_order_then_others():
    quality = {"zeta": 1.5, "ratio": 0.5, "start": 0.25, "dead": False}
    facts = [(f.label, f.value) for f in quality_facts(quality)]
    assert facts == [
        ("Objective of the start image", "0.25"),
        ("Largest activation: final image / best on the dataset", "50%"),
        ("Dead (never active)", "no"),
        ("zeta", "1.5"),
    ]


def test_stats_facts_counts_and_fractions():
    stats = {"images": 1797.0, "active_fraction": 0.123456, "mean": 0.5}
    assert [f.value for f in stats_facts(stats)] == ["0.5", "12.3%", "1,797"]


def test_stats_facts_label_the_dataset_minimum():
    stats = {"max": 2.0, "min": -0.25}
    assert [(f.label, f.value) for f in stats_facts(stats)] == [
        ("Largest per-image maximum", "2"),
        ("Smallest per-image maximum", "-0.25"),
    ]


def test_layer_facts_name_class_shape_units():
    info = LayerInfo("fc", "Dense", (None, 1500), 1500, "dense", "relu")
    assert [(f.label, f.value) for f in layer_facts(info)] == [
        ("Class", "Dense"),
        ("Output shape", "(batch, 1500)"),
        ("Units", "1,500"),
        ("Activation", "relu"),
    ]


@pytest.mark.parametrize(
    ("steps", "cap", "text"),
    [
        (20, 30, "20"),
        (30, 30, "30"),
        (50, 30, "50, capped at 30"),
        (20, None, "20"),
        (None, 30, "the preset's own, capped at 30"),
    ],
)
def test_layer_settings_facts_steps_name_cap_only_when_it_lowers(steps, cap, text):
    facts = layer_settings_facts({"steps": steps, "max_steps": cap}, {})
    assert [(f.label, f.value) for f in facts] == [("Steps", text)]
