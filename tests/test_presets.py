"""Presets, their step rules and the visualize.* settings that choose them."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from atlas.config import VisualizeSettings
from atlas.errors import ConfigError
from atlas.visualize import PRESETS, Preset, preset_named
from atlas.visualize.updates import REFERENCE_GRADIENT_RMS, adam, displacement


def test_every_preset_is_valid_and_the_readme_names_them():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for name, preset in PRESETS.items():
        assert preset.name == name and preset.steps > 0
        assert f"| `{name}` |" in readme


def test_fourier_preset_decorrelates_and_transforms():
    fourier = PRESETS["fourier"]
    assert fourier.param == "fourier" and fourier.decorrelate
    assert fourier.step_policy == "adam" and fourier.transforms


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"param": "fourier"}, "needs step_policy 'adam'"),
        ({"param": "fourier", "step_policy": "adam", "blur_sigma": 1.0}, "blur_sigma"),
        ({"decorrelate": True}, "decorrelate needs param 'fourier'"),
        ({"scale": (1.2, 0.8)}, "0 < low <= high"),
        ({"rotate": 200.0}, "rotate must be in"),
        ({"pad": -1}, "pad must be >= 0"),
        ({"param": "wavelet"}, "param must be"),
    ],
)
def test_preset_problems_name_the_field_and_value(fields, message):
    with pytest.raises(ConfigError, match=r"preset 'bad'.*" + message):
        Preset("bad", steps=10, **fields)


def test_preset_named_suggests_a_close_name():
    assert preset_named("fourier") is PRESETS["fourier"]
    with pytest.raises(ConfigError, match=r"Did you mean 'fourier'"):
        preset_named("fourir")


def test_constant_displacement_moves_each_sample_by_the_reference_rms():
    grad = np.zeros((2, 2, 2, 1), np.float32)
    grad[0] = 3.0
    grad[1, 0, 0, 0] = 1e-3  # a tiny gradient moves as far as a big one
    preset = dataclasses.replace(PRESETS["none"], lr=10.0)
    step = displacement(tf.constant(grad), preset, scale=2.0).numpy()
    rms = np.sqrt(np.mean(step**2, axis=(1, 2, 3)))
    np.testing.assert_allclose(rms, 10.0 * REFERENCE_GRADIENT_RMS * 2.0, rtol=1e-5)


def test_progress_displacement_aims_at_the_desired_rise():
    grad = np.full((1, 2, 2, 1), 10.0, np.float32)  # |g|^2 = 400
    preset = dataclasses.replace(PRESETS["yosinski-1"], desired_progress=2.0)
    step = displacement(tf.constant(grad), preset, scale=1.0).numpy()
    np.testing.assert_allclose(step, 2.0 / 400.0 * grad, rtol=1e-6)
    assert float(np.sum(step * grad)) == pytest.approx(2.0)


def test_adam_first_step_moves_by_lr_in_the_gradient_sign():
    grad = tf.constant([[3.0, -0.01, 0.0]])
    zeros = tf.zeros_like(grad)
    change, (first, second) = adam(grad, (zeros, zeros), tf.constant(1), lr=0.05)
    np.testing.assert_allclose(change.numpy(), [[0.05, -0.05, 0.0]], rtol=1e-4)
    np.testing.assert_allclose(first.numpy(), 0.1 * grad.numpy(), rtol=1e-6)
    np.testing.assert_allclose(second.numpy(), 0.001 * grad.numpy() ** 2, rtol=1e-6)


def test_visualize_settings_views_put_the_main_preset_first_when_missing():
    assert VisualizeSettings().views == (
        "yosinski-3",
        "none",
        "l2",
        "yosinski-3-jitter",
        "fourier",
    )
    settings = VisualizeSettings(preset="fourier", progression=("none", "fourier"))
    assert settings.views == ("none", "fourier")
    assert VisualizeSettings(progression=()).views == ("yosinski-3",)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"progression": ["nonne"]}, "did you mean 'none'"),
        ({"progression": ["l2", "l2"]}, "names a preset twice"),
        ({"diversity": 1}, "at least 2 images"),
        ({"memory_mb": 0}, "greater than 0"),
    ],
)
def test_visualize_settings_reject_bad_values(fields, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        VisualizeSettings(**fields)
