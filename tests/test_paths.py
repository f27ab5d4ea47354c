"""Links between site files, relative to the linking page."""

from __future__ import annotations

import pytest

from atlas.site.paths import relative, root_of


@pytest.mark.parametrize(
    ("target", "page", "href"),
    [
        ("static/style.css", "index.html", "static/style.css"),
        ("static/style.css", "layers/c1.html", "../static/style.css"),
        ("layers/c1.html", "units/c1/0003.html", "../../layers/c1.html"),
        ("units/c1/0004.html", "units/c1/0003.html", "0004.html"),
        ("units/w/000/0499.html", "units/w/001/0500.html", "../000/0499.html"),
        ("img/c1/0003-topk.png", "units/c1/0003.html", "../../img/c1/0003-topk.png"),
        ("index.html", "units/w/001/0500.html", "../../../index.html"),
        ("units/c1/0003.html", "layers/c1.html", "../units/c1/0003.html"),
    ],
)
def test_relative_path_from_page(target, page, href):
    assert relative(target, page) == href


def test_root_of_page_depth():
    pages = ("index.html", "layers/a.html", "units/a/0.html")
    assert [root_of(page) for page in pages] == [".", "..", "../.."]
