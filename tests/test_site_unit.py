"""Unit pages with every optional field, and with none: views, bottom-k,
heatmaps, histograms, labels, class weights, navigation, citation."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from atlas.records import ClassWeight, LayerRecord
from atlas.site import render_site
from atlas.site.facts import format_number
from tests.site_records import (
    METHODS,
    make_atlas,
    make_full_unit,
    make_info,
    make_layer,
    parse,
    site_units,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
BASE = "https://example.org/atlas/"


def full_atlas():
    full = LayerRecord(make_info("full", 3), [make_full_unit(i) for i in range(3)])
    plain = make_layer(make_info("plain", 2), [0, 1], label=None)
    return make_atlas([full, plain])


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("full")
    render_site(full_atlas(), folder, TEMPLATES, base_url=BASE)
    return folder


def text_of(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def images_of(page: Path) -> list[dict]:
    return [attrs for tag, attrs in parse(page).tags if tag == "img"]


def test_unit_page_main_view_large_then_every_view_in_order(site):
    unit = make_full_unit(1)
    shown = [a for a in images_of(site / "units/full/0001.html") if "-v-" in a["src"]]
    assert len(shown) == 1 + len(unit.images)
    assert [a["src"].split("-v-")[1] for a in shown] == [
        "lucid.png",
        "lucid.png",
        "yosinski-3.png",
        "negative.png",
        "diversity-1.png",
    ]
    # The quality figures' preset ("lucid") is the main view: 6 px grow
    # 53 times to 318 (near 320), then 26 times (near 160) in the row.
    assert [(a["width"], a["height"]) for a in shown] == [("318", "318")] + [
        ("156", "156")
    ] * 4


def test_unit_page_single_view_has_no_row(tmp_path):
    layer = make_layer(make_info("one", 1), [0], presets=("p",))
    render_site(make_atlas([layer]), tmp_path, TEMPLATES)
    html = text_of(tmp_path / "units/one/0000.html")
    assert "Every synthesized view" not in html
    assert html.count("-v-p.png") == 1


def test_unit_page_views_captions_and_quality(site):
    html = text_of(site / "units/full/0001.html")
    for caption in (
        "Preset lucid; reaches 25% of the dataset&#39;s best",
        "Preset yosinski-3; reaches 87.5% of the dataset&#39;s best",
        "Negative: the image that drives it lowest; reaches -2.5",
        "Diversity, image 1: another way to drive it</figcaption>",
    ):
        assert caption in html


def test_unit_page_bottom_k_values_and_labels(site):
    unit = make_full_unit(2)
    rows = parse(site / "units/full/0002.html").rows
    table = [row for row in rows if len(row) == 4 and row[0].isdigit()]
    bottom = table[len(unit.top_k) :]
    assert bottom == [
        [str(rank), format_number(ex.value), ex.label, f"{ex.source} (#{ex.image})"]
        for rank, ex in enumerate(unit.bottom_k, 1)
    ]
    assert bottom[0][1] == "-2"


def test_unit_page_heatmap_sheet_per_method_lines_up(site):
    (_, entry), *_ = site_units(site)
    assert sorted(entry["heatmaps"]["top"]) == sorted(METHODS)
    top = Image.open(site / entry["sheets"]["top"])
    for method, path in entry["heatmaps"]["top"].items():
        heat = Image.open(site / path)
        assert heat.size == top.size, method
    shown = images_of(site / entry["page"])
    sheets = [a for a in shown if "heatmaps over" in a["alt"]]
    assert [a["alt"].split(" heatmaps")[0] for a in sheets] == [
        "Deconvnet (Zeiler and Fergus 2014)",
        "Guided backpropagation (Springenberg et al. 2015)",
    ]
    crops = next(a for a in shown if "excite unit 0 of layer full most" in a["alt"])
    assert {(a["width"], a["height"]) for a in sheets} == {
        (crops["width"], crops["height"])
    }


def test_unit_page_histogram_inline_svg(site):
    html = text_of(site / "units/full/0000.html")
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    # 10 bins, one of them empty: 9 bars, each with its count as a tooltip.
    assert svg.count('<rect class="bar"') == 9
    assert "<title>1 to 1.5: 20 images</title>" in svg
    assert "55 images, activation from -1 to 4; the fullest bin, 1 to 1.5" in svg
    # The marker is the synthesized image's peak, 3.5: 4.5 of the 5 units
    # of the axis, which runs from x = 4 to x = 316.
    assert '<line class="marker" x1="284.80"' in svg
    assert "style" not in svg


def test_unit_page_label_counts_and_class_weights(site):
    page = site / "units/full/0001.html"
    html = text_of(page)
    assert '<span class="tag">dog</span>' in html
    assert "Labelled dog: 3 of its 4 top-k examples." in html
    rows = parse(page).rows
    assert ["dog", "0.75"] in rows and ["whale", "0.125"] in rows
    assert ["tree", "-0.5"] in rows


def test_unit_page_missing_fields_say_why(site):
    html = text_of(site / "units/plain/0001.html")
    for note in (
        "Bottom-k examples were not mined in this build.",
        "No attribution heatmaps were computed for these crops.",
        "No histogram of activations was recorded for this unit.",
        "No label: the dataset has no classes, or none was computed.",
        "No classes promoted: not computed for this unit.",
        "No classes suppressed: not computed for this unit.",
    ):
        assert note in html
    assert "<svg" not in html


def test_unit_page_weights_computed_all_negative_say_so(tmp_path):
    below = replace(
        make_full_unit(0),
        promotes=[],
        suppresses=[ClassWeight("tree", -0.5), ClassWeight("cat", -0.25)],
    )
    zero = replace(make_full_unit(1), promotes=[], suppresses=[])
    layer = LayerRecord(make_info("neg", 2), [below, zero])
    render_site(make_atlas([layer]), tmp_path, TEMPLATES)
    html = text_of(tmp_path / "units/neg/0000.html")
    assert (
        "No classes promoted: every class weight of this unit is zero or below." in html
    )
    assert "not computed" not in html
    assert ["tree", "-0.5"] in parse(tmp_path / "units/neg/0000.html").rows
    html = text_of(tmp_path / "units/neg/0001.html")
    assert "every class weight of this unit is zero or above." in html
    assert "not computed" not in html


def test_unit_page_keyboard_links_prev_next_up(site):
    page = site / "units/full/0001.html"
    links = {
        attrs["data-nav"]: (page.parent / attrs["href"].split("#")[0]).resolve()
        for tag, attrs in parse(page).tags
        if tag == "a" and "data-nav" in attrs
    }
    assert links == {
        "prev": (site / "units/full/0000.html").resolve(),
        "next": (site / "units/full/0002.html").resolve(),
        "up": (site / "layers/full.html").resolve(),
    }


def test_unit_page_cites_its_public_address(site, tmp_path):
    assert f"<code>{BASE}units/full/0002.html</code>" in text_of(
        site / "units/full/0002.html"
    )
    render_site(full_atlas(), tmp_path, TEMPLATES)
    assert "<code>units/full/0002.html</code>" in text_of(
        tmp_path / "units/full/0002.html"
    )


def test_layer_page_cells_carry_sort_keys_and_label(site):
    cells = [
        attrs
        for tag, attrs in parse(site / "layers/full.html").tags
        if tag == "li" and attrs.get("id", "").startswith("u")
    ]
    unit = make_full_unit(1)
    assert cells[1] == {
        "id": "u0001",
        "data-a": f"{unit.stats['max']:.3g}",
        "data-s": "0.25",
        "data-q": f"{unit.quality['ratio']:.3g}",
    }
    assert "<b>dog</b>" in text_of(site / "layers/full.html")


def test_layer_page_never_active_unit_hides_crops(tmp_path):
    unit = make_full_unit(0)
    silent = LayerRecord(
        make_info("quiet", 1),
        [
            type(unit)(
                index=0,
                images=unit.images,
                top_k=unit.top_k,
                quality={"final": 1.5, "ratio": None, "dead": False},
                stats={"max": 0.0, "active_fraction": 0.0},
            )
        ],
    )
    render_site(make_atlas([silent]), tmp_path, TEMPLATES)
    layer = images_of(tmp_path / "layers/quiet.html")
    assert [a["alt"] for a in layer] == ["Unit 0: synthesized image"]
    html = text_of(tmp_path / "units/quiet/0000.html")
    assert "only its synthesized image drives it above 0" in html
    assert "<summary>Show the tied examples anyway</summary>" in html


def test_unit_page_heatmap_of_other_size_is_resized(tmp_path):
    unit = make_full_unit(0)
    example = unit.top_k[0]
    odd = type(example)(
        image=example.image,
        value=example.value,
        label=example.label,
        source=example.source,
        box=example.box,
        crop=example.crop,
        heatmaps={"guided": np.full((7, 5), 255, np.uint8)},
    )
    layer = LayerRecord(
        make_info("odd", 1),
        [type(unit)(0, unit.images, [odd], unit.quality, unit.stats)],
    )
    render_site(make_atlas([layer]), tmp_path, TEMPLATES)
    (_, entry), *_ = site_units(tmp_path)
    heat = np.asarray(Image.open(tmp_path / entry["heatmaps"]["top"]["guided"]))
    assert heat.shape == (39, 39, 4)
    assert heat[..., :3].reshape(-1, 3).tolist()[0] == [252, 255, 164]
