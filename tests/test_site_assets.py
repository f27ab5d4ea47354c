"""Which static/ files a built site publishes: what its pages link to and
what those stylesheets load, nothing else."""

from __future__ import annotations

from atlas.site.assets import StaticAssets
from atlas.site.writer import SiteWriter


def test_static_assets_copy_linked_files_and_what_styles_load(tmp_path):
    static = tmp_path / "static"
    (static / "img").mkdir(parents=True)
    (static / "page.css").write_text('body { background: url("img/bg.png"); }')
    (static / "img" / "bg.png").write_bytes(b"png")
    (static / "probe.js").write_text("live only")
    output = tmp_path / "out"
    output.mkdir()
    assets = StaticAssets()
    html = b'<link href="../static/page.css"><a href="https://example.org/x">'
    assets.add_page("layers/c1.html", html)
    assets.add_page("index.html", b'<a href="static/../index.html">')

    published = assets.copy(static, SiteWriter(output))

    assert published == ["static/img/bg.png", "static/page.css"]
    files = sorted(p.relative_to(output).as_posix() for p in output.rglob("*.*"))
    assert [f for f in files if f.startswith("static/")] == published
