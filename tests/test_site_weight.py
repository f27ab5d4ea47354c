"""The weight of the site: a 512-unit layer page under its budget, one sheet
per kind of crops, folders under the entry cap, and counts that match
what is on disk (C17)."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from atlas.records import ClassWeight, LayerRecord
from atlas.site import render, render_site
from atlas.site.layout import MAX_ENTRIES
from atlas.site.writer import published_size
from tests.helpers import broken_links
from tests.site_records import (
    make_atlas,
    make_full_unit,
    make_info,
    make_layer,
    make_unit,
    parse,
    rel_link,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
# What a reader's browser loads for a layer page, and its budget.
LAYER_BUDGET = 300_000
UNITS = 512
CLASSES = ("golden retriever", "tabby cat", "school bus", "espresso maker")


def wide_layer() -> LayerRecord:
    """512 units as a large model gives them: a long layer name, a long
    preset name, nine crops, labels and promoted classes."""
    units = [
        replace(
            make_unit(i, k=9, size=32, presets=("yosinski-3-jitter",)),
            label=CLASSES[i % len(CLASSES)],
            promotes=[ClassWeight(c, 1.0) for c in CLASSES[:3]],
        )
        for i in range(UNITS)
    ]
    return LayerRecord(make_info("block4_conv3", UNITS), units)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> Path:
    """600 units: unit pages in two folders of 500."""
    folder = tmp_path_factory.mktemp("big")
    layer = make_layer(make_info("wide", 600), range(600), k=2, size=2, presets=("p",))
    render_site(make_atlas([layer]), folder, TEMPLATES)
    return folder


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wide")
    render_site(make_atlas([wide_layer()]), folder, TEMPLATES)
    return folder


def walk_count(site: Path) -> tuple[int, int]:
    """Files and bytes by os.walk, leaving out the cache and the marker."""
    files = size = 0
    for folder, subfolders, names in os.walk(site):
        subfolders[:] = [s for s in subfolders if s != ".atlas-cache"]
        for name in names:
            if name != ".neuron-atlas":
                files += 1
                size += os.path.getsize(os.path.join(folder, name))
    return files, size


def test_layer_page_of_512_units_under_budget(wide):
    loaded = [
        "layers/block4_conv3.html",
        "static/style.css",
        "static/atlas.js",
        "search-index.js",
    ]
    total = sum((wide / path).stat().st_size for path in loaded)
    assert total < LAYER_BUDGET, total


def test_layer_page_of_512_units_lists_each_once(wide):
    html = (wide / "layers/block4_conv3.html").read_text(encoding="utf-8")
    assert html.count('<li id="u') == UNITS
    assert html.count('loading="lazy"') == 2 * UNITS


def test_unit_crops_of_one_kind_share_one_sheet(tmp_path):
    layer = LayerRecord(make_info("c1", 2), [make_full_unit(0), make_full_unit(1)])
    render_site(make_atlas([layer]), tmp_path, TEMPLATES)
    names = sorted(p.name for p in (tmp_path / "img" / "c1").iterdir())
    unit = [name for name in names if name.startswith("0000-")]
    # 4 views, a top and a bottom sheet, a heatmap sheet per method: the
    # 4 top-k and 4 bottom-k crops take 4 files, not 16.
    assert unit == [
        "0000-bottom.png",
        "0000-heat-top-deconvnet.png",
        "0000-heat-top-guided.png",
        "0000-top.png",
        "0000-v-diversity-1.png",
        "0000-v-lucid.png",
        "0000-v-negative.png",
        "0000-v-yosinski-3.png",
    ]


def test_large_layer_folders_stay_under_entry_cap(tmp_path):
    # 130 units of 8 images each would put 1,040 files in one folder.
    units = [make_full_unit(i, k=2, size=2) for i in range(130)]
    atlas = make_atlas([LayerRecord(make_info("big", 130), units)])
    render_site(atlas, tmp_path, TEMPLATES)
    largest = max(
        len(subfolders) + len(files) for _, subfolders, files in os.walk(tmp_path)
    )
    assert largest <= MAX_ENTRIES
    assert sorted(p.name for p in (tmp_path / "img" / "big").iterdir()) == [
        "000",
        "001",
    ]
    assert len(list(tmp_path.glob("img/big/001/*.png"))) == 30 * 8


def test_summary_counts_equal_os_walk(wide, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / ".neuron-atlas").write_text("marker")
    (site / ".atlas-cache").mkdir(exist_ok=True)
    (site / ".atlas-cache" / "entry.npz").write_bytes(b"x" * 100)
    summary = render_site(make_atlas([make_layer_small()]), site, TEMPLATES)
    assert (summary.files, summary.bytes) == walk_count(site)
    assert published_size(wide) == walk_count(wide)


def make_layer_small() -> LayerRecord:
    return LayerRecord(make_info("c1", 3), [make_unit(i) for i in range(3)])


def test_render_site_warns_past_the_file_cap(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(render, "WARN_FILES", 10)
    with caplog.at_level(logging.WARNING, logger="atlas.site.render"):
        summary = render_site(make_atlas([make_layer_small()]), tmp_path, TEMPLATES)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"the site has {summary.files} files; static hosts often refuse more than "
        "10: build fewer layers, or fewer views and heatmap methods per unit"
    ]


def test_large_images_get_display_sized_webp(tmp_path):
    units = [make_unit(i, k=6, size=300, crop=250) for i in range(2)]
    render_site(
        make_atlas([LayerRecord(make_info("big", 2), units)]), tmp_path, TEMPLATES
    )
    names = sorted(p.name for p in (tmp_path / "img" / "big").glob("0000-*"))
    assert names == [
        "0000-grid.webp",
        "0000-t-lucid.webp",
        "0000-t-yosinski-3.webp",
        "0000-top.webp",
        "0000-v-lucid.png",
        "0000-v-yosinski-3.png",
    ]
    sizes = {name: Image.open(tmp_path / "img" / "big" / name).size for name in names}
    # Crops shrink to 192 px in the page's sheet and to 80 px in the grid's,
    # which holds the best 5; thumbnails to 192 px; views keep their size.
    assert sizes["0000-top.webp"] == (6 * 192 + 5 * 10, 192)
    assert sizes["0000-grid.webp"] == (5 * 80 + 4 * 4, 80)
    assert sizes["0000-t-lucid.webp"] == (192, 192)
    assert sizes["0000-v-lucid.png"] == (300, 300)
    grid = [a["src"] for t, a in parse(tmp_path / "layers/big.html").tags if t == "img"]
    assert grid[:2] == ["../img/big/0000-t-lucid.webp", "../img/big/0000-grid.webp"]


def test_render_site_large_layer_shards_under_entry_cap(sharded):
    for folder, subfolders, files in os.walk(sharded):
        assert len(subfolders) + len(files) <= MAX_ENTRIES, folder
    assert (sharded / "units" / "wide" / "001" / "0550.html").is_file()
    assert len(list(sharded.glob("units/wide/*/*.html"))) == 600


def test_render_site_large_layer_links_resolve(sharded):
    assert broken_links(sharded) == []
    page = sharded / "units" / "wide" / "001" / "0500.html"
    expected = sharded / "units" / "wide" / "000" / "0499.html"
    assert rel_link(page, "prev") == expected.resolve()
