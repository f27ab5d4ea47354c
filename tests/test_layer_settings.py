"""Per-layer settings end to end: a tiny model built three times, with one
layer's [layers.override] changed between the first two builds."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pytest

from atlas.cli import main
from tests.helpers import broken_links, digits_like_model, random_digits
from tests.site_records import layer_units, read_json

STEPS = "4"
LAYERS = ("c1", "c2", "fc", "probs")
CONFIG = (
    '[model]\npath = "tiny.keras"\n'
    '[data]\npath = "data.npz"\nbatch_size = 16\n'
    '[layers]\nnames = ["c1", "c2", "fc", "probs"]\n'
    '[visualize]\npreset = "l2"\nprogression = ["l2"]\nchunk = 4\n'
    "[mine]\ntop_k = 5\n"
)
# The second and third builds: c2 alone changes its preset and top-k.
OVERRIDE = (
    '[layers.override.c2]\nvisualize = { preset = "fourier" }\nmine = { top_k = 7 }\n'
)


class _Recorder:
    """What one build computed: the layers each stage ran for, and the
    kinds of store entries written."""

    def __init__(self) -> None:
        self.synthesized: list[str] = []
        self.mined: list[tuple[tuple[str, ...], int]] = []
        self.heatmaps: list[str] = []
        self.saved: Counter[str] = Counter()
        self.said: list[str] = []  # what atlas.compute logged

    def install(self, patch: pytest.MonkeyPatch) -> None:
        import atlas.compute as compute
        import atlas.explain as explain
        from atlas.store import Store

        synthesize, mine = compute.synthesize, compute.mine
        heatmaps, save = explain._compute_heatmaps, Store.save

        def synthesize_spy(layer_model, info, *args, **kwargs):
            self.synthesized.append(info.name)
            return synthesize(layer_model, info, *args, **kwargs)

        def mine_spy(extractor, infos, *args, **kwargs):
            self.mined.append((tuple(i.name for i in infos), kwargs["k"]))
            return mine(extractor, infos, *args, **kwargs)

        def heatmaps_spy(ctx, info, *args):
            self.heatmaps.append(info.name)
            return heatmaps(ctx, info, *args)

        def save_spy(store, kind, key, arrays):
            self.saved[kind] += 1
            return save(store, kind, key, arrays)

        patch.setattr(compute, "synthesize", synthesize_spy)
        patch.setattr(compute, "mine", mine_spy)
        patch.setattr(explain, "_compute_heatmaps", heatmaps_spy)
        patch.setattr(Store, "save", save_spy)


class _Said(logging.Handler):
    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.INFO)
        self.lines = lines

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _build(project, config: str) -> _Recorder:
    (project / "site_config.toml").write_text(config, encoding="utf-8")
    recorder = _Recorder()
    handler = _Said(recorder.said)
    logging.getLogger("atlas.compute").addHandler(handler)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("ATLAS_MAX_STEPS", STEPS)
            recorder.install(patch)
            code = main(["build", "--config", str(project / "site_config.toml")])
    finally:
        logging.getLogger("atlas.compute").removeHandler(handler)
    assert code == 0
    return recorder


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    project = tmp_path_factory.mktemp("layers")
    digits_like_model().save(project / "tiny.keras")
    np.savez_compressed(project / "data.npz", **random_digits())
    first = _build(project, CONFIG)
    second = _build(project, CONFIG + OVERRIDE)
    third = _build(project, CONFIG + OVERRIDE)
    return project / "output", (first, second, third)


def _layer(site, name: str) -> dict:
    manifest = read_json(site / "manifest.json")
    return next(layer for layer in manifest["layers"] if layer["name"] == name)


def test_build_first_computes_every_layer(builds):
    _, (first, _, _) = builds
    assert sorted(set(first.synthesized)) == sorted(LAYERS)
    assert first.mined == [(LAYERS, 5)]
    assert sorted(first.heatmaps) == sorted(LAYERS)


def test_build_changed_override_recomputes_only_that_layer(builds):
    _, (_, second, _) = builds
    assert set(second.synthesized) == {"c2"}  # its fourier views only
    assert second.mined == [(("c2",), 7)]
    assert second.heatmaps == ["c2"]
    assert second.saved["mining"] == 1
    assert second.saved["heatmaps"] == 1
    assert second.saved["synthesis"] == 2  # 6 units in chunks of 4
    assert set(second.saved) == {"mining", "heatmaps", "synthesis"}


def test_build_log_says_what_was_synthesized_and_what_was_kept(builds):
    _, (first, second, third) = builds
    assert "layer c1: synthesized l2 (4 units)" in first.said
    assert "layer c2: synthesized fourier (6 units); from the cache: l2" in second.said
    assert "layer c1: from the cache: l2" in second.said
    assert "layer c2: from the cache: fourier, l2" in third.said


def test_build_unchanged_config_recomputes_nothing(builds):
    _, (_, _, third) = builds
    assert third.synthesized == []
    assert third.mined == []
    assert third.heatmaps == []
    assert not third.saved


def test_build_layer_data_carry_each_layers_own_settings(builds):
    site, _ = builds
    c1, c2 = _layer(site, "c1"), _layer(site, "c2")
    assert c2["overrides"] == {"visualize.preset": "fourier", "mine.top_k": 7}
    assert c2["settings"]["progression"] == ["fourier", "l2"]
    assert c2["settings"]["top_k"] == 7
    assert c1["overrides"] == {}
    assert (c1["settings"]["progression"], c1["settings"]["top_k"]) == (["l2"], 5)
    for unit in layer_units(site, c2):
        assert unit["views"] == ["fourier", "l2"]
        assert len(unit["top_k"]) == 7
        assert (site / unit["images"]["fourier"]).is_file()
    for unit in layer_units(site, c1):
        assert unit["views"] == ["l2"]
        assert len(unit["top_k"]) == 5


def test_build_layer_pages_show_their_own_settings(builds):
    site, _ = builds
    c1 = (site / _layer(site, "c1")["page"]).read_text()
    c2 = (site / _layer(site, "c2")["page"]).read_text()
    assert "<dt>Overrides</dt><dd>mine.top_k = 7; visualize.preset = fourier" in c2
    assert "<dt>Top-k examples per unit</dt><dd>7</dd>" in c2
    assert "<dt>Presets shown</dt><dd>fourier, l2</dd>" in c2
    assert "Overrides" not in c1
    assert "<dt>Top-k examples per unit</dt><dd>5</dd>" in c1
    assert "<dt>Preset</dt><dd>l2</dd>" in c1
    unit = layer_units(site, _layer(site, "c2"))[0]
    assert "Preset fourier" in (site / unit["page"]).read_text()
    assert broken_links(site) == []
