"""Publishing: base_url, canonical links, the sitemap, links that work from
disk and under any sub-path (C15, C16), and the search index."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from atlas.config import parse_settings
from atlas.errors import BuildError, ConfigError
from atlas.records import AtlasRecord
from atlas.site import publish, render_site
from tests.site_records import (
    make_atlas,
    make_full_unit,
    make_info,
    make_layer,
    parse,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def atlas() -> AtlasRecord:
    from atlas.records import LayerRecord

    full = LayerRecord(make_info("c1", 2), [make_full_unit(0), make_full_unit(1)])
    wide = make_layer(make_info("wide", 503), range(503), k=1, size=2, presets=("p",))
    return make_atlas([full, wide])


def render(folder: Path, base_url: str | None) -> Path:
    folder.mkdir(parents=True)
    render_site(atlas(), folder, TEMPLATES, base_url=base_url)
    return folder


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    return render(tmp_path_factory.mktemp("pub") / "a", "https://host.org/atlas")


@pytest.fixture(scope="module")
def local(tmp_path_factory) -> Path:
    return render(tmp_path_factory.mktemp("local") / "a", None)


def files_of(site: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site).as_posix(): p.read_bytes()
        for p in sorted(site.rglob("*"))
        if p.is_file()
    }


def pages_of(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def sitemap_urls(site: Path) -> list[str]:
    tree = ElementTree.parse(site / "sitemap.xml")
    return [loc.text for loc in tree.iter(f"{SITEMAP_NS}loc")]


def test_sitemap_lists_every_page_under_the_sub_path(published):
    expected = [
        "https://host.org/atlas/" + p.relative_to(published).as_posix()
        for p in pages_of(published)
    ]
    assert sorted(sitemap_urls(published)) == sorted(expected)
    assert "https://host.org/atlas/units/wide/001/0502.html" in expected


def test_sitemap_same_bytes_with_or_without_trailing_slash(published, tmp_path):
    other = render(tmp_path / "b", "https://host.org/atlas/")
    assert files_of(other) == files_of(published)


def test_canonical_link_is_the_page_address(published):
    for page in pages_of(published):
        links = [
            attrs["href"]
            for tag, attrs in parse(page).tags
            if tag == "link" and attrs.get("rel") == "canonical"
        ]
        path = page.relative_to(published).as_posix()
        assert links == [f"https://host.org/atlas/{path}"]


def test_no_base_url_no_sitemap_canonical_or_none(local):
    assert not (local / "sitemap.xml").exists()
    manifest = json.loads((local / "manifest.json").read_text(encoding="utf-8"))
    assert "base_url" not in manifest and "sitemap" not in manifest
    for path, data in files_of(local).items():
        assert b"None" not in data, path
        assert b'rel="canonical"' not in data, path


def test_published_site_has_no_none_anywhere(published):
    for path, data in files_of(published).items():
        assert b"None" not in data, path


def test_links_relative_and_naming_files(published):
    for page in pages_of(published):
        html = page.read_text(encoding="utf-8")
        assert 'href="/' not in html and 'src="/' not in html, page
        assert "<base" not in html, page
        for _, attrs in parse(page).tags:
            link = attrs.get("href") or attrs.get("src")
            if not link or attrs.get("rel") == "canonical":
                continue
            target = link.split("#")[0]
            assert "://" not in link, (page, link)
            assert not target or re.search(r"\.[a-z]+$", target), (page, link)


def test_every_page_loads_the_script_relatively(published):
    for page in pages_of(published):
        tags = parse(page).tags
        scripts = [a for t, a in tags if t == "script"]
        assert len(scripts) == 1 and "type" not in scripts[0], page
        target = (page.parent / scripts[0]["src"]).resolve()
        assert target == (published / "static" / "atlas.js").resolve()
        root = next(a for t, a in tags if t == "html")["data-root"]
        index = (page.parent / root / "search-index.js").resolve()
        assert index == (published / "search-index.js").resolve(), page


def test_script_needs_no_fetch_worker_or_module():
    script = (TEMPLATES / "static" / "atlas.js").read_text(encoding="utf-8")
    for forbidden in ("fetch(", "Worker(", "import(", "XMLHttpRequest", "eval("):
        assert forbidden not in script


def test_normalize_base_url_adds_one_slash():
    assert publish.normalize_base_url("https://h.org/a") == "https://h.org/a/"
    assert publish.normalize_base_url(" https://h.org/a// ") == "https://h.org/a/"
    assert publish.normalize_base_url("http://h.org") == "http://h.org/"
    assert publish.normalize_base_url("") is None
    assert publish.normalize_base_url(None) is None


@pytest.mark.parametrize("url", ["atlas/", "ftp://h.org/", "https://h.org/?x=1"])
def test_normalize_base_url_rejects_and_names_the_key(url):
    with pytest.raises(BuildError, match=r"site\.base_url.*" + re.escape(repr(url))):
        publish.normalize_base_url(url)


def test_config_base_url_normalized_and_checked():
    raw = {
        "model": {"path": "m.keras"},
        "data": {"path": "d.npz"},
        "layers": {"names": ["c1"]},
        "site": {"base_url": "https://h.org/atlas"},
    }
    assert parse_settings(raw).site.base_url == "https://h.org/atlas/"
    raw["site"]["base_url"] = "h.org/atlas"
    with pytest.raises(ConfigError, match=r"site\.base_url: must be an absolute"):
        parse_settings(raw)


def test_sitemap_past_the_protocol_cap_splits_into_parts(monkeypatch):
    monkeypatch.setattr(publish, "SITEMAP_URLS", 2)
    files = dict(publish.sitemap_files("https://h.org/a/", ["x.html", "y.html", "z"]))
    assert list(files) == ["sitemap.xml", "sitemaps/0001.xml", "sitemaps/0002.xml"]
    index = ElementTree.fromstring(files["sitemap.xml"])
    assert index.tag == f"{SITEMAP_NS}sitemapindex"
    assert [loc.text for loc in index.iter(f"{SITEMAP_NS}loc")] == [
        "https://h.org/a/sitemaps/0001.xml",
        "https://h.org/a/sitemaps/0002.xml",
    ]
    second = ElementTree.fromstring(files["sitemaps/0002.xml"])
    assert [loc.text for loc in second.iter(f"{SITEMAP_NS}loc")] == [
        "https://h.org/a/z"
    ]
