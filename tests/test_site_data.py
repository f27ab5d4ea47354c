"""The atlas as data: manifest.json, a JSON file per layer and the search
index, with the fields README.md documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from atlas.records import LayerRecord
from atlas.site import render_site
from tests.site_records import (
    make_atlas,
    make_full_unit,
    make_info,
    make_layer,
    site_units,
    small_atlas,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    render_site(small_atlas(), folder, TEMPLATES)
    return folder


@pytest.fixture(scope="module")
def deep(tmp_path_factory) -> Path:
    """Every optional field, and a layer large enough to shard its pages."""
    full = LayerRecord(make_info("c1", 2), [make_full_unit(0), make_full_unit(1)])
    wide = make_layer(make_info("wide", 503), range(503), k=1, size=2, presets=("p",))
    folder = tmp_path_factory.mktemp("deep")
    render_site(make_atlas([full, wide]), folder, TEMPLATES)
    return folder


def test_manifest_has_documented_fields(site):
    manifest = json.loads((site / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["schema"] == 2
    assert {"model", "settings", "versions", "layers", "search_index"} <= set(manifest)
    assert manifest["model"]["parameters"] == 12345
    atlas = small_atlas()
    for layer, record in zip(manifest["layers"], atlas.layers, strict=True):
        assert layer["name"] == record.info.name
        assert layer["unit_count"] == len(record.units)
        assert layer["sheet"] == {"cell": [39, 39], "gap": 2}
        assert layer["grid_sheet"] is None
        units = json.loads((site / layer["data"]).read_text(encoding="utf-8"))
        assert units["schema"] == 2 and units["layer"] == layer  # the same entry
        for unit, expected in zip(units["units"], record.units, strict=True):
            assert {"index", "page", "images", "top_k", "quality"} <= set(unit)
            assert unit["index"] == expected.index
            assert [(t["image"], t["value"], t["label"]) for t in unit["top_k"]] == [
                (ex.image, ex.value, ex.label) for ex in expected.top_k
            ]
            assert unit["quality"]["dead"] == expected.quality["dead"]


def test_layer_data_holds_every_optional_field(deep):
    (layer, unit), *_ = site_units(deep)
    record = make_full_unit(0)
    assert unit["label"] == "cat" and unit["label_counts"] == {"cat": 3, "dog": 1}
    assert unit["views"] == ["lucid", "yosinski-3", "negative", "diversity-1"]
    assert set(unit["images"]) == set(unit["views"])
    assert unit["image_quality"]["yosinski-3"] == {"ratio": 0.875}
    assert [t["value"] for t in unit["bottom_k"]] == [-2.0, -1.5, -1.0, -0.5]
    assert unit["top_k"][0]["heatmaps"] == ["deconvnet", "guided"]
    assert unit["histogram"]["counts"] == record.histogram.counts.tolist()
    assert unit["histogram"]["edges"] == record.histogram.edges.tolist()
    assert unit["promotes"] == [
        {"label": "cat", "weight": 0.75},
        {"label": "whale", "weight": 0.125},
    ]
    assert unit["suppresses"] == [{"label": "tree", "weight": -0.5}]
    paths = [
        *unit["images"].values(),
        unit["sheets"]["top"],
        unit["sheets"]["bottom"],
        *unit["heatmaps"]["top"].values(),
    ]
    assert all((deep / path).is_file() for path in paths)
    wide = json.loads((deep / "manifest.json").read_text(encoding="utf-8"))
    assert wide["layers"][1]["unit_pages"] == {"folder": "units/wide", "shard": 500}


def test_search_index_is_a_classic_script_with_every_unit(deep):
    text = (deep / "search-index.js").read_text(encoding="ascii")
    assert text.startswith("window.ATLAS_SEARCH = ") and text.endswith(";\n")
    index = json.loads(text[len("window.ATLAS_SEARCH = ") : -2])
    layers = {layer["name"]: layer for layer in index["layers"]}
    assert layers["wide"]["shard"] == 500 and layers["c1"]["shard"] == 0
    # The script derives unit pages from folder and shard: do it here too.
    for layer, unit in site_units(deep):
        entry = layers[layer["name"]]
        shard = f"/{unit['index'] // entry['shard']:03d}" if entry["shard"] else ""
        assert f"{entry['folder']}{shard}/{unit['index']:04d}.html" == unit["page"]
    first = layers["c1"]["units"][1]
    strings = index["strings"]
    assert first[0] == 1 and strings[first[1]] == "dog"
    assert [strings[i] for i in first[2]] == ["dog", "whale"]
