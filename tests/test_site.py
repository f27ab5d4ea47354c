"""The site renderer on hand-built records: files, links, markup, escaping."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from atlas.errors import BuildError
from atlas.records import AtlasRecord, LayerRecord, UnitRecord
from atlas.site import SiteSummary, render_site
from atlas.site.facts import format_number
from tests.helpers import broken_links, page_links
from tests.site_records import (
    HOSTILE_LABEL,
    HOSTILE_NAME,
    PRESETS,
    make_atlas,
    make_info,
    make_layer,
    make_unit,
    parse,
    rel_link,
    site_units,
    small_atlas,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
DEAD_TEXT = "never active on the dataset"


def render(atlas: AtlasRecord, folder: Path) -> SiteSummary:
    folder.mkdir(parents=True, exist_ok=True)
    return render_site(atlas, folder, TEMPLATES)


def unit_entries(site: Path) -> list[tuple[dict, dict]]:
    return site_units(site)


def all_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("site") / "out"
    render(small_atlas(), folder)
    return folder


# Files


def test_render_site_every_unit_gets_a_page_and_images(site):
    atlas = small_atlas()
    entries = unit_entries(site)
    assert [(layer["name"], unit["index"]) for layer, unit in entries] == [
        (layer.info.name, unit.index) for layer in atlas.layers for unit in layer.units
    ]
    for _, unit in entries:
        assert (site / unit["page"]).is_file()
        assert set(unit["images"]) == set(PRESETS)
        for path in [*unit["images"].values(), unit["sheets"]["top"]]:
            assert (site / path).read_bytes().startswith(b"\x89PNG")
        assert unit["sheets"]["bottom"] is None and unit["sheets"]["grid"] is None


def test_render_site_summary_counts_what_it_wrote(tmp_path):
    atlas = small_atlas()
    summary = render(atlas, tmp_path / "out")
    units = sum(len(layer.units) for layer in atlas.layers)
    assert summary.pages == 1 + len(atlas.layers) + units
    assert summary.images == units * (len(PRESETS) + 1)
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    published = [p for p in written if ".atlas-cache" not in p.parts]
    assert [p.name for p in written if p not in published] == ["site-files.txt"]
    assert summary.files == len(published)
    assert summary.bytes == sum(p.stat().st_size for p in published)


def test_render_site_again_removes_only_its_own_stale_files(tmp_path):
    site = tmp_path / "out"
    render(small_atlas(), site)
    (site / "CNAME").write_text("atlas.example.org")
    (site / "layers" / "notes.txt").write_text("mine")
    kept = make_atlas([make_layer(make_info("c1", 4), [0, 2])])
    summary = render_site(kept, site, TEMPLATES)
    assert sorted(p.name for p in (site / "layers").iterdir()) == [
        "c1.html",
        "notes.txt",
    ]
    assert sorted(p.name for p in (site / "units" / "c1").iterdir()) == [
        "0000.html",
        "0002.html",
    ]
    assert not (site / "units" / "probs").exists()
    assert (site / "CNAME").read_text() == "atlas.example.org"
    assert broken_links(site) == []
    files = [
        p for p in site.rglob("*") if p.is_file() and ".atlas-cache" not in p.parts
    ]
    assert summary.files == len(files)


def test_render_site_every_link_resolves(site):
    assert broken_links(site) == []


def test_render_site_static_holds_exactly_what_pages_link(site):
    linked = {
        (page.parent / link).resolve()
        for page in all_pages(site)
        for link in page_links(page)
        if "static/" in link
    }
    published = {p.resolve() for p in (site / "static").rglob("*") if p.is_file()}
    assert published == linked
    assert {p.name for p in published} == {"atlas.js", "favicon.svg", "style.css"}


def test_render_site_missing_static_file_names_it(tmp_path):
    templates = tmp_path / "templates"
    for path in TEMPLATES.rglob("*"):
        if path.is_file() and path.name != "atlas.js":
            target = templates / path.relative_to(TEMPLATES)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (tmp_path / "out").mkdir()
    with pytest.raises(BuildError, match=r"link to 'static/atlas.js'"):
        render_site(small_atlas(), tmp_path / "out", templates)


def test_render_site_same_record_twice_is_byte_identical(tmp_path):
    render(small_atlas(), tmp_path / "a")
    render(small_atlas(), tmp_path / "b")
    first = {p.relative_to(tmp_path / "a"): p for p in (tmp_path / "a").rglob("*")}
    second = {p.relative_to(tmp_path / "b"): p for p in (tmp_path / "b").rglob("*")}
    assert sorted(first) == sorted(second)
    for name, path in first.items():
        if path.is_file():
            assert path.read_bytes() == second[name].read_bytes(), name


def test_render_site_missing_template_names_it(tmp_path):
    with pytest.raises(BuildError, match="unit.html"):
        render_site(small_atlas(), tmp_path, tmp_path)


def test_render_site_import_leaves_tensorflow_unloaded():
    code = (
        "import sys, atlas.site, atlas.site.pages; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('tensorflow', 'keras')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.stdout.strip() == "[]"


def test_check_atlas_float_image_names_layer_and_unit(tmp_path):
    unit = make_unit(3)
    bad = UnitRecord(
        index=3,
        images={"lucid": unit.images["lucid"].astype(np.float32)},
        top_k=unit.top_k,
        quality=unit.quality,
        stats=unit.stats,
    )
    atlas = make_atlas([LayerRecord(info=make_info("c9", 4), units=[bad])])
    with pytest.raises(BuildError, match=r"layer 'c9' unit 3 .*'lucid'.*float32"):
        render(atlas, tmp_path / "out")
    assert not (tmp_path / "out" / "index.html").exists()


# Markup rules


def test_pages_no_inline_style_script_or_handlers(site):
    for page in all_pages(site):
        html = page.read_text(encoding="utf-8")
        assert "style=" not in html, page
        assert "<style" not in html, page
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, page
        assert not re.search(r"<[^>]*\son[a-z]+\s*=", html), page


def test_pages_csp_meta_is_first_in_head(site):
    for page in all_pages(site):
        html = page.read_text(encoding="utf-8")
        first = re.search(r"<head>\s*(<[^>]*>)", html).group(1)
        assert 'http-equiv="Content-Security-Policy"' in first, page
        assert "default-src 'none'" in first


def test_pages_every_image_has_alt_and_size(site):
    for page in all_pages(site):
        for tag, attrs in parse(page).tags:
            if tag == "img":
                assert attrs.get("alt"), page
                assert int(attrs["width"]) > 0 and int(attrs["height"]) > 0


def test_layer_page_thumbnails_lazy_with_sizes(site):
    tags = [a for t, a in parse(site / "layers" / "c1.html").tags if t == "img"]
    assert len(tags) == 8
    assert all(attrs["loading"] == "lazy" for attrs in tags)
    synthesized, sheets = tags[0::2], tags[1::2]
    # 6-pixel images grow 16 times to 96; 3-pixel crops are stored 13 times
    # larger in the sheet, 39 pixels, and shown as stored.
    # Every image of the grid is pixelated: the grid says so, not each one.
    assert {(a["width"], a["height"], a.get("class")) for a in synthesized} == {
        ("96", "96", None)
    }
    tags = parse(site / "layers" / "c1.html").tags
    grid = next(a for t, a in tags if t == "ol" and a.get("id") == "grid")
    assert grid["class"] == "grid pixelated-views"
    assert {(a["width"], a["height"], a["class"]) for a in sheets} == {
        ("121", "39", "strip")
    }


def test_layer_page_many_examples_clip_grid_sheet(tmp_path):
    layer = make_layer(make_info("deep", 1), [0], k=9)
    render(make_atlas([layer]), tmp_path)
    grid = [a for t, a in parse(tmp_path / "layers" / "deep.html").tags if t == "img"]
    assert grid[1]["class"] == "clipped strip"
    assert (grid[1]["width"], grid[1]["height"]) == (str(5 * 39 + 4 * 2), "39")
    page = [a for t, a in parse(tmp_path / "units/deep/0000.html").tags if t == "img"]
    (sheet,) = [a for a in page if a["src"].endswith("-top.png")]
    assert (sheet["width"], sheet["height"]) == (str(2 * (9 * 39 + 8 * 2)), "78")
    assert sheet["class"] == "pixelated"


def test_layer_page_large_image_shrinks_smoothly(tmp_path):
    layer = make_layer(make_info("big", 1), [0], size=300)
    render(make_atlas([layer]), tmp_path)
    images = [a for t, a in parse(tmp_path / "layers" / "big.html").tags if t == "img"]
    synthesized = images[0]
    assert (synthesized["width"], synthesized["height"]) == ("96", "96")
    assert "class" not in synthesized


# Escaping


def test_pages_escape_hostile_layer_name_and_label(site):
    for page in all_pages(site):
        html = page.read_text(encoding="utf-8")
        assert "<script>alert(1)" not in html, page
        assert HOSTILE_LABEL not in html, page
        assert "<atlas>" not in html, page
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in index
    assert "Tiny &#34;&lt;atlas&gt;&#34;" in index
    _, unit = next(
        entry for entry in unit_entries(site) if entry[0]["name"] == HOSTILE_NAME
    )
    html = (site / unit["page"]).read_text(encoding="utf-8")
    assert "&#34;../x&#34;" in html


def test_render_site_hostile_names_write_only_inside_output(tmp_path):
    render(small_atlas(), tmp_path / "out")
    outside = [p for p in tmp_path.rglob("*") if (tmp_path / "out") not in p.parents]
    assert outside == [tmp_path / "out"]
    names = [p.name for p in (tmp_path / "out").rglob("*")]
    assert not any("<" in name or '"' in name or "evil" in name for name in names)


def test_index_page_about_html_kept_as_markup(site):
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "A <em>tiny</em> model. &lt;b&gt;raw&lt;/b&gt;" in index


# Index


def test_index_page_lists_every_layer_and_links_atlas_layers(site):
    atlas = small_atlas()
    rows = parse(site / "index.html").rows
    table = {row[0]: row for row in rows if len(row) == 4}
    assert sorted(table) == sorted(["Layer", *(i.name for i in atlas.all_layers)])
    assert table["outside"][1:] == ["Conv2D", "(batch, 6, 6, 7)", "7"]
    links = [
        (site / attrs["href"]).resolve()
        for tag, attrs in parse(site / "index.html").tags
        if tag == "a" and attrs["href"].startswith("layers/")
    ]
    pages = [
        site / layer["page"]
        for layer in json.loads((site / "manifest.json").read_text())["layers"]
    ]
    assert links == [p.resolve() for p in pages]


def test_index_page_states_model_facts(site):
    text = (site / "index.html").read_text(encoding="utf-8")
    for fact in ("tiny (tiny.keras)", "6 × 6 × 3", "12,345", "data.npz, 40 images"):
        assert fact in text
    assert "2024-05-01" in text and np.__version__ in text


def test_pages_default_title_footer_names_the_model(tmp_path):
    atlas = make_atlas([make_layer(make_info("c1", 2), [0, 1])], title="Neuron Atlas")
    render(atlas, tmp_path)
    pages = all_pages(tmp_path)
    assert len(pages) == 4  # the index, the layer and two units
    for page in pages:
        footer = page.read_text(encoding="utf-8").split('<footer class="colophon">')
        assert len(footer) == 2, page
        assert (
            "<p>A neuron atlas of the model tiny, made with Neuron Atlas. <a"
            in (footer[1])
        ), page
        assert "of Neuron Atlas" not in footer[1], page


def test_index_page_logits_accuracy_stated(site):
    text = (site / "index.html").read_text(encoding="utf-8")
    assert "The model classifies 66.7% of the logits units' images" in text


def test_index_page_logits_accuracy_absent_when_none(tmp_path):
    render(make_atlas([make_layer(make_info("c1", 1), [0])]), tmp_path)
    assert "classifies" not in (tmp_path / "index.html").read_text(encoding="utf-8")


# Layer and unit pages


def test_unit_page_previous_and_next_link_neighbours(site):
    pages = [
        site / unit["page"]
        for layer, unit in unit_entries(site)
        if layer["name"] == "c1"
    ]
    assert [p.name for p in pages] == [
        "0000.html",
        "0002.html",
        "0003.html",
        "0005.html",
    ]
    for position, page in enumerate(pages):
        before = pages[position - 1].resolve() if position else None
        after = pages[position + 1].resolve() if position + 1 < len(pages) else None
        assert rel_link(page, "prev") == before
        assert rel_link(page, "next") == after


def test_unit_page_shows_every_value_label_and_source(site):
    atlas = small_atlas()
    unit = atlas.layers[0].units[1]
    rows = parse(site / "units" / "c1" / "0002.html").rows
    shown = [row for row in rows if len(row) == 4 and row[0].isdigit()]
    assert shown == [
        [str(rank), format_number(ex.value), "cat", f"{ex.source} (#{ex.image})"]
        for rank, ex in enumerate(unit.top_k, 1)
    ]
    assert shown[0][1] == "5.7"


def test_unit_page_shows_quality_and_stats(site):
    text = (site / "units" / "c1" / "0002.html").read_text(encoding="utf-8")
    # final 4.0 against a dataset best of 1.2345 * 3 + 2 = 5.7035
    assert "70.1%" in text
    assert "Objective of the start image" in text and "0.125" in text
    assert "Images where it is active (above 0)" in text and "25%" in text
    assert "Images seen" in text and ">40<" in text


def test_unit_page_links_up_to_layer_and_index(site):
    page = site / "units" / "c1" / "0003.html"
    hrefs = [a["href"] for t, a in parse(page).tags if t == "a"]
    assert "../../layers/c1.html#u0003" in hrefs
    assert "../../index.html" in hrefs


def test_unit_page_logits_layer_says_pre_activation(site):
    text = (site / "units" / "probs" / "0001.html").read_text(encoding="utf-8")
    assert "pre-activation logits" in text and "softmax" in text
    assert '<th scope="col" class="num">Logit</th>' in text


def test_unit_page_dead_unit_says_never_active(site):
    layer, unit = [e for e in unit_entries(site) if e[0]["name"] == HOSTILE_NAME][1]
    assert unit["quality"]["dead"] is True
    assert DEAD_TEXT in (site / unit["page"]).read_text(encoding="utf-8")
    layer_html = (site / layer["page"]).read_text(encoding="utf-8")
    assert layer_html.count(DEAD_TEXT) == 1


def test_layer_page_links_every_unit_and_index(site):
    hrefs = [a["href"] for t, a in parse(site / "layers" / "c1.html").tags if t == "a"]
    for index in (0, 2, 3, 5):
        assert f"../units/c1/{index:04d}.html" in hrefs
    assert "../index.html" in hrefs
