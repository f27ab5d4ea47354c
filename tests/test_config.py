"""Config validation: typed settings, every problem reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atlas.config import load_settings, parse_settings
from atlas.errors import ConfigError

MINIMAL = {
    "model": {"path": "m.keras"},
    "data": {"path": "d.npz"},
    "layers": {"names": ["conv1"]},
}


def _with(section: str, **values) -> dict:
    raw = {key: dict(value) for key, value in MINIMAL.items()}
    raw.setdefault(section, {}).update(values)
    return raw


def test_parse_settings_minimal_gets_defaults():
    settings = parse_settings(MINIMAL)
    assert settings.visualize.preset == "yosinski-3"
    assert settings.mine.top_k == 9
    assert settings.model.input_range is None  # inferred from the model
    assert settings.layers.names == ["conv1"]
    assert settings.output.dir == Path("output")


def test_parse_settings_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError) as info:
        parse_settings(_with("visualize", stpes=10))
    message = str(info.value)
    assert "visualize.stpes" in message
    assert "did you mean 'steps'" in message


def test_parse_settings_unknown_section_is_named():
    raw = {**MINIMAL, "visualise": {"steps": 1}}
    with pytest.raises(ConfigError, match=r"\[visualise\].*did you mean 'visualize'"):
        parse_settings(raw)


def test_parse_settings_reports_every_problem_together():
    raw = _with("mine", top_k=0)
    raw["visualize"] = {"steps": "many", "preset": "yosinsky-3"}
    raw["model"]["input_range"] = [1, 0]
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    message = str(info.value)
    assert "4 problem(s)" in message
    assert "mine.top_k" in message and "got 0" in message
    assert "visualize.steps" in message and "'many'" in message
    assert "did you mean 'yosinski-3'" in message
    assert "model.input_range" in message and "low < high" in message


def test_parse_settings_missing_required_key_names_section():
    raw = {key: value for key, value in MINIMAL.items() if key != "data"}
    with pytest.raises(ConfigError, match=r"data: required; add it under \[data\]"):
        parse_settings(raw)


def test_parse_settings_empty_layer_list_is_rejected():
    with pytest.raises(ConfigError, match="layers.names: is empty"):
        parse_settings(_with("layers", names=[]))


def test_parse_settings_wrong_types_are_rejected():
    with pytest.raises(ConfigError, match="layers.names"):
        parse_settings(_with("layers", names="conv1"))


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("mine", "top_k", "4"),
        ("visualize", "negative", "yes"),
        ("visualize", "steps", 12.5),
        ("model", "safe_mode", 0),
        ("data", "batch_size", True),
    ],
)
def test_parse_settings_numbers_and_switches_are_not_coerced(section, key, value):
    with pytest.raises(ConfigError) as error:
        parse_settings(_with(section, **{key: value}))
    assert f"{section}.{key}" in str(error.value) and repr(value) in str(error.value)


def test_parse_settings_whole_numbers_are_fine_floats():
    settings = parse_settings(
        _with("model", input_range=[0, 255]) | {"visualize": {"memory_mb": 512}}
    )
    assert settings.model.input_range == (0.0, 255.0)
    assert settings.visualize.memory_mb == 512.0


def test_parse_settings_override_values_are_not_coerced():
    raw = _with("layers", override={"conv1": {"visualize": {"negative": "yes"}}})
    with pytest.raises(ConfigError, match="layers.override.conv1.visualize.negative"):
        parse_settings(raw)


def test_load_settings_resolves_paths_against_config_folder(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    config = folder / "site_config.toml"
    config.write_text(
        '[model]\npath = "models/m.keras"\n[data]\npath = "../data"\n'
        '[layers]\nnames = ["c"]\n[site]\nabout = "about.md"\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    assert settings.model.path == folder / "models" / "m.keras"
    assert settings.data.path == tmp_path / "data"
    assert settings.site.about == folder / "about.md"
    assert settings.output.dir == folder / "output"


def test_load_settings_output_override_wins(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(
        '[model]\npath="m.keras"\n[data]\npath="d"\n[layers]\nnames=["c"]\n'
    )
    settings = load_settings(config, output=tmp_path / "elsewhere")
    assert settings.output.dir == tmp_path / "elsewhere"


def test_load_settings_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="--config"):
        load_settings(tmp_path / "nope.toml")


def test_load_settings_bad_toml_is_a_config_error(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[model\npath=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config)


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.integers(), st.text(max_size=5), st.booleans()),
        max_size=4,
    )
)
def test_parse_settings_arbitrary_visualize_tables_never_crash(table):
    raw = _with("visualize", **table)
    try:
        settings = parse_settings(raw)
    except ConfigError as exc:
        assert "problem(s)" in str(exc)
    else:
        assert settings.visualize.chunk > 0


def _overriding(**tables) -> dict:
    raw = _with("layers", names=["conv1", "conv2", "base/conv1"])
    raw["layers"]["override"] = tables
    return raw


def test_for_layer_applies_only_that_layers_override():
    raw = _overriding(
        conv2={
            "visualize": {"preset": "fourier", "steps": 256, "progression": ["l2"]},
            "mine": {"top_k": 16},
        },
        **{"base/conv1": {"mine": {"bins": 8}}},
    )
    raw["visualize"] = {"seed": 7}
    settings = parse_settings(raw)
    conv2 = settings.for_layer("conv2")
    assert conv2.visualize.preset == "fourier"
    assert conv2.visualize.steps == 256
    assert conv2.visualize.views == ("fourier", "l2")
    assert conv2.visualize.seed == 7  # not overridden: the global value
    assert (conv2.mine.top_k, conv2.mine.bins) == (16, 32)
    assert settings.for_layer("base/conv1").mine.bins == 8
    assert settings.for_layer("conv1") == settings
    assert settings.visualize.preset == "yosinski-3"
    assert settings.mine.top_k == 9


def test_parse_settings_override_unknown_keys_suggest_with_dotted_key():
    raw = _overriding(conv2={"visualize": {"stpes": 3}, "mien": {"top_k": 2}})
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    message = str(info.value)
    assert "2 problem(s)" in message
    assert "layers.override.conv2.visualize.stpes: unknown key" in message
    assert "did you mean 'steps'" in message
    assert "layers.override.conv2.mien: unknown table" in message
    assert "did you mean 'mine'" in message


def test_parse_settings_override_bad_values_join_the_global_problems():
    raw = _overriding(
        conv2={"visualize": {"preset": "fourir"}, "mine": {"top_k": "many"}},
        **{"base/conv1": {"visualize": {"diversity": 1}}},
    )
    raw["mine"] = {"bins": 1}
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    message = str(info.value)
    assert "4 problem(s)" in message
    assert "layers.override.conv2.visualize.preset: is not a preset" in message
    assert "did you mean 'fourier'" in message and "got 'fourir'" in message
    assert "layers.override.conv2.mine.top_k" in message and "'many'" in message
    assert 'layers.override."base/conv1".visualize.diversity' in message
    assert "mine.bins" in message and "got 1" in message


def test_parse_settings_override_of_a_layer_not_in_names_suggests():
    raw = _overriding(conv3={"mine": {"top_k": 4}})
    with pytest.raises(ConfigError) as info:
        parse_settings(raw)
    message = str(info.value)
    assert "1 problem(s)" in message
    assert "layers.override.conv3: layer 'conv3' is not in layers.names" in message
    assert "did you mean 'conv2'" in message


def test_parse_settings_override_size_is_refused_with_the_fix():
    raw = _overriding(conv1={"visualize": {"size": [64, 64]}})
    with pytest.raises(ConfigError, match=r"conv1\.visualize\.size: cannot differ"):
        parse_settings(raw)


@given(
    st.dictionaries(
        st.sampled_from(["conv1", "conv2", "conv9", "x/y"]),
        st.one_of(
            st.integers(),
            st.dictionaries(
                st.sampled_from(["visualize", "mine", "other"]),
                st.one_of(
                    st.integers(),
                    st.dictionaries(
                        st.sampled_from(["preset", "top_k", "steps", "nope"]),
                        st.one_of(st.integers(), st.text(max_size=5)),
                        max_size=3,
                    ),
                ),
                max_size=3,
            ),
        ),
        max_size=3,
    )
)
def test_parse_settings_arbitrary_override_tables_never_crash(override):
    raw = _overriding(**override)
    try:
        settings = parse_settings(raw)
    except ConfigError as exc:
        assert "layers.override" in str(exc)
    else:
        for name in settings.layers.names:
            assert settings.for_layer(name).mine.top_k > 0
