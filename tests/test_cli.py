"""The command line: one clear line per error, exit code 2, no traceback."""

from __future__ import annotations

import pytest

from atlas.cli import main


def _config(tmp_path, text: str):
    path = tmp_path / "site_config.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


MINIMAL = '[model]\npath = "m.keras"\n[data]\npath = "d.npz"\n[layers]\nnames = ["c"]\n'


@pytest.mark.parametrize(
    "text, expected",
    [
        (MINIMAL + "[visualize]\nstpes = 3\n", "did you mean 'steps'"),
        (MINIMAL + '[mine]\ntop_k = "nine"\n', "mine.top_k"),
        (MINIMAL, "model file not found"),
    ],
)
def test_build_errors_are_one_clear_message(tmp_path, capsys, text, expected):
    code = main(["build", "--config", _config(tmp_path, text)])
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert "Traceback" not in err
    assert not (tmp_path / "output").exists()


def test_build_missing_data_is_named_before_any_work(tmp_path, capsys):
    (tmp_path / "m.keras").write_bytes(b"")
    code = main(["build", "--config", _config(tmp_path, MINIMAL)])
    assert code == 2
    assert "data.path not found" in capsys.readouterr().err


def test_bad_step_cap_is_refused(tmp_path, capsys, monkeypatch):
    import numpy as np

    from tests.helpers import digits_like_model, random_digits

    digits_like_model().save(tmp_path / "m.keras")
    np.savez(tmp_path / "d.npz", **random_digits())
    monkeypatch.setenv("ATLAS_MAX_STEPS", "abc")
    text = MINIMAL.replace('["c"]', '["c1"]')
    assert main(["build", "--config", _config(tmp_path, text)]) == 2
    assert "ATLAS_MAX_STEPS='abc'" in capsys.readouterr().err
    assert not (tmp_path / "output").exists()
    assert not (tmp_path / "output").exists()


def test_layers_lists_qualified_names_and_units(tmp_path, capsys):
    from tests.helpers import digits_like_model

    digits_like_model().save(tmp_path / "m.keras")
    (tmp_path / "d.npz").write_bytes(b"")
    text = MINIMAL.replace('["c"]', '["c1"]')
    assert main(["layers", "--config", _config(tmp_path, text)]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}
    assert lines["c1"][-2:] == ["4", "*"]
    assert lines["probs"][-1] == "3"


def test_layers_columns_line_up_with_long_names(tmp_path, capsys):
    import keras

    inputs = keras.Input((8, 8, 1))
    long_name = "a_convolution_whose_name_is_far_longer_than_32"
    x = keras.layers.Conv2D(3, 3, name=long_name)(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    keras.Model(inputs, keras.layers.Dense(2, name="out")(x)).save(tmp_path / "m.keras")
    (tmp_path / "d.npz").write_bytes(b"")
    text = MINIMAL.replace('["c"]', '["gap"]')
    assert main(["layers", "--config", _config(tmp_path, text)]) == 0
    header, *rows, key = capsys.readouterr().out.splitlines()
    starts = [header.index(title) for title in ("class", "output shape", "units")]
    assert starts == [len(long_name) + 1, len(long_name) + 24, len(long_name) + 37]
    cells = {row[: starts[0]].strip(): row for row in rows}
    assert cells[long_name][starts[1] : starts[2]].rstrip() == "(6, 6, 3)"
    assert cells[long_name][starts[2] :] == "3"
    assert cells["gap"][starts[0] : starts[1]].rstrip() == "GlobalAveragePooling2D"
    assert cells["gap"][starts[1] : starts[2]].rstrip() == "(3,)"
    assert cells["gap"][starts[2] :] == "3 *"
    assert cells["out"][starts[2] :] == "2"
    assert key == "(* = in layers.names)"
