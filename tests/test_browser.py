"""The built site in headless Chromium: from disk and from a local server,
with no console error, no failed or cross-origin request, and its search,
sorting and keys working (C15, C16, C18).

Needs the Python package `playwright` and Debian's Chromium at
/usr/bin/chromium (or $ATLAS_CHROMIUM); Playwright's own browser
downloads are never used. `.ci/run` installs both.
"""

from __future__ import annotations

import io
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urldefrag, urljoin

import pytest

from atlas.records import ClassWeight, LayerRecord
from atlas.serve import make_server
from atlas.site import render_site
from tests.helpers import broken_links
from tests.site_records import (
    make_atlas,
    make_full_unit,
    make_info,
    make_layer,
    make_unit,
)

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="browser tests need `pip install playwright` (the Python package)",
)

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path(os.environ.get("ATLAS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STEPS = "8"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WAIT_MS = 10_000
POLL_MS = 50

pytestmark = pytest.mark.skipif(
    not CHROMIUM.is_file(),
    reason=f"no Chromium at {CHROMIUM}: `apt-get install chromium` or set "
    "ATLAS_CHROMIUM to its path",
)


# Sites and servers


@pytest.fixture(scope="module")
def default_site(tmp_path_factory) -> Path:
    """The default atlas of the repository, built with few ascent steps."""
    from atlas.cli import main

    site = tmp_path_factory.mktemp("default") / "atlas"
    config = str(ROOT / "site_config.toml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ATLAS_MAX_STEPS", STEPS)
        assert main(["build", "--config", config, "--output", str(site)]) == 0
    return site


@pytest.fixture(scope="module")
def deep_site(tmp_path_factory) -> Path:
    """Hand-made records: every optional field, and a layer so large that
    its unit pages sit three folders deep."""
    full = LayerRecord(make_info("c1", 4), [make_full_unit(i) for i in range(4)])
    wide = make_layer(make_info("wide", 503), range(503), k=2, size=2, presets=("p",))
    site = tmp_path_factory.mktemp("deep") / "atlas"
    site.mkdir()
    render_site(make_atlas([full, wide]), site, ROOT / "templates")
    return site


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def serving(folder: Path) -> Iterator[str]:
    server = make_server(folder, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def served(default_site) -> Iterator[str]:
    """`atlas serve` of the default atlas: its root URL."""
    yield from serving(default_site)


# Watching a page


class Visit:
    """A page that records every problem a reader's console would show."""

    def __init__(self, browser, origin: str, **options) -> None:
        self.context = browser.new_context(**{"viewport": DESKTOP, **options})
        self.page = self.context.new_page()
        self.origin = origin
        self.problems: list[str] = []
        self.console: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"error: {e}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("request", self._request)
        self.page.on("response", self._response)

    def open(self, url: str) -> Visit:
        self.page.goto(url, wait_until="load")
        return self

    def load_all_images(self) -> list[str]:
        """Load lazy images now; return the sources of those that failed."""
        self.page.evaluate(
            "document.querySelectorAll('img').forEach(i => { i.loading = 'eager' })"
        )
        # Polled from here: wait_for_function evaluates a string in the
        # page, which the site's CSP rightly refuses (no 'unsafe-eval').
        for _ in range(WAIT_MS // POLL_MS):
            if self.page.evaluate("Array.from(document.images).every(i => i.complete)"):
                break
            self.page.wait_for_timeout(POLL_MS)
        return self.page.evaluate(
            "Array.from(document.images)"
            ".filter(i => !(i.naturalWidth > 0)).map(i => i.src)"
        )

    def close(self) -> None:
        self.context.close()

    def _console(self, message) -> None:
        self.console.append(f"{message.type}: {message.text}")
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def _failed(self, request) -> None:
        # Leaving a page cancels what it still loads (the icon, say): that
        # is ERR_ABORTED, never a missing file (ERR_FILE_NOT_FOUND, 404).
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"failed: {request.url} ({request.failure})")

    def _request(self, request) -> None:
        if not request.url.startswith(self.origin):
            self.problems.append(f"cross-origin: {request.url}")

    def _response(self, response) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")


@pytest.fixture
def visit(browser):
    opened: list[Visit] = []

    def start(origin: str, **options) -> Visit:
        opened.append(Visit(browser, origin, **options))
        return opened[-1]

    yield start
    for one in opened:
        one.close()


def disk(site: Path, path: str) -> str:
    return (site / path).resolve().as_uri()


def csp_messages(lines: list[str]) -> list[str]:
    return [line for line in lines if re.search("Content.Security.Policy", line)]


# From disk (file://)


def test_browser_default_pages_from_disk_clean(visit, default_site):
    for path in ("index.html", "layers/conv2.html", "units/conv2/0005.html"):
        seen = visit("file://").open(disk(default_site, path))
        assert seen.load_all_images() == [], path
        assert seen.problems == [], path
        assert csp_messages(seen.console) == [], path


def test_browser_every_link_and_image_resolves(default_site, deep_site):
    assert broken_links(default_site) == []
    assert broken_links(deep_site) == []


def test_browser_unit_page_with_every_field_clean(visit, deep_site):
    seen = visit("file://").open(disk(deep_site, "units/c1/0001.html"))
    assert seen.load_all_images() == []
    assert seen.page.locator("svg.histogram rect.bar").count() == 9
    assert seen.problems == []


def test_browser_search_finds_unit_by_label(visit, deep_site):
    seen = visit("file://").open(disk(deep_site, "layers/c1.html"))
    seen.page.fill("#search-input", "bird")
    results = seen.page.locator("#search-results a")
    results.first.wait_for(timeout=WAIT_MS)
    # Units 2 of c1 is labelled "bird" (CLASSES[2]); no other unit is.
    assert results.all_inner_texts() == ["c1 · unit 2"]
    results.first.click()
    seen.page.wait_for_url("**/units/c1/0002.html")
    assert seen.problems == []


@pytest.fixture(scope="module")
def digits_site(tmp_path_factory) -> Path:
    """A digits-like layer: unit 0 is labelled 7 and promotes class 7."""
    units = [
        replace(make_unit(i), label=str(i), promotes=[ClassWeight(str(i), 0.5)])
        for i in range(12)
    ]
    units[0] = replace(units[0], label="7", promotes=[ClassWeight("7", 0.5)])
    layer = LayerRecord(make_info("conv2", 12), units)
    site = tmp_path_factory.mktemp("digits") / "atlas"
    site.mkdir()
    render_site(make_atlas([layer]), site, ROOT / "templates")
    return site


@pytest.mark.parametrize("query", ["conv2 7", "conv2 unit 7", "Unit 7 conv2"])
def test_browser_search_unit_number_ranks_above_class(visit, digits_site, query):
    seen = visit("file://").open(disk(digits_site, "index.html"))
    seen.page.fill("#search-input", query)
    results = seen.page.locator("#search-results a")
    results.first.wait_for(timeout=WAIT_MS)
    # Unit 7 (its number) before unit 0 (labelled 7, promotes 7).
    assert results.all_inner_texts()[:2] == ["conv2 · unit 7", "conv2 · unit 0"]
    seen.page.press("#search-input", "Enter")
    seen.page.wait_for_url("**/units/conv2/0007.html")
    assert seen.problems == []


def test_browser_arrow_keys_and_u_move_between_pages(visit, default_site):
    seen = visit("file://").open(disk(default_site, "units/conv1/0003.html"))
    seen.page.keyboard.press("ArrowRight")
    seen.page.wait_for_url("**/units/conv1/0004.html")
    seen.page.keyboard.press("ArrowLeft")
    seen.page.wait_for_url("**/units/conv1/0003.html")
    seen.page.keyboard.press("/")
    assert seen.page.evaluate("document.activeElement.id") == "search-input"
    seen.page.keyboard.press("Escape")
    seen.page.keyboard.press("u")
    seen.page.wait_for_url("**/layers/conv1.html#u0003")
    assert seen.problems == []


def test_browser_layer_screenshot_not_blank(visit, default_site):
    from PIL import Image, ImageStat

    seen = visit("file://").open(disk(default_site, "layers/conv1.html"))
    seen.load_all_images()
    shot = Image.open(io.BytesIO(seen.page.screenshot())).convert("L")
    # A blank page is one flat colour; the grid has text and digit images.
    assert ImageStat.Stat(shot).stddev[0] > 20
    assert len(shot.getcolors(maxcolors=256 * 256)) > 50


def test_browser_phone_width_no_sideways_scroll(visit, deep_site, default_site):
    for site, path in (
        (deep_site, "units/c1/0001.html"),
        (default_site, "layers/fc.html"),
        (default_site, "index.html"),
    ):
        seen = visit("file://", viewport=PHONE).open(disk(site, path))
        width = seen.page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], path


def test_browser_dark_scheme_changes_colours(visit, default_site):
    seen = visit("file://", color_scheme="dark").open(disk(default_site, "index.html"))
    background = seen.page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)"


def test_browser_c15_deep_page_search_layer_follow_first(visit, deep_site):
    seen = visit("file://").open(disk(deep_site, "units/wide/001/0502.html"))
    seen.page.fill("#search-input", "wide")
    first = seen.page.locator("#search-results a").first
    first.wait_for(timeout=WAIT_MS)
    assert first.inner_text() == "Layer wide"
    seen.page.press("#search-input", "Enter")
    seen.page.wait_for_url("**/layers/wide.html")
    assert seen.page.locator("#grid > li").count() == 503
    assert seen.problems == []


def test_browser_failed_index_shows_visible_error(visit, tmp_path):
    render_site(
        make_atlas([make_layer(make_info("c1", 1), [0])]), tmp_path, ROOT / "templates"
    )
    (tmp_path / "search-index.js").unlink()
    seen = visit("file://").open(disk(tmp_path, "units/c1/0000.html"))
    seen.page.fill("#search-input", "c1")
    status = seen.page.locator("#search-status.error")
    status.wait_for(timeout=WAIT_MS)
    assert status.is_visible()
    assert status.inner_text().startswith("Search is unavailable: search-index.js")


# From a server (http://127.0.0.1)


def test_browser_c16_parent_folder_served_crawl_all_200(default_site):
    for root in serving(default_site.parent):
        statuses = crawl(root + "atlas/")
    bad = {url: status for url, status in statuses.items() if status != 200}
    assert bad == {}
    pages = len(list(default_site.rglob("*.html")))
    assert sum(url.endswith(".html") for url in statuses) == pages
    for path in default_site.rglob("*"):
        if (
            path.suffix in (".html", ".js", ".json")
            and ".atlas-cache" not in path.parts
        ):
            data = path.read_bytes()
            assert b"None" not in data and b'href="/' not in data, path


def test_browser_c18_no_csp_message_from_serve_and_sorting_works(visit, served):
    seen = visit(served).open(served + "layers/fc.html")
    assert seen.load_all_images() == []
    seen.page.select_option("#grid-sort", "a")
    cells = seen.page.eval_on_selector_all(
        "#grid > li", "cells => cells.map(c => [c.id, c.getAttribute('data-a')])"
    )
    values = [(-float(a), int(cid[1:])) for cid, a in cells if a is not None]
    assert values == sorted(values)
    assert [cid for cid, a in cells if a is None] == []
    seen.page.check("#grid-reverse")
    first = seen.page.eval_on_selector("#grid > li", "c => c.id")
    assert first == f"u{min(values, key=lambda v: (-v[0], v[1]))[1]:04d}"
    assert csp_messages(seen.console) == []
    assert seen.problems == []


def test_browser_c18_filter_and_label_sort_from_disk(visit, deep_site):
    seen = visit("file://").open(disk(deep_site, "layers/c1.html"))
    seen.page.select_option("#grid-sort", "l")
    order = seen.page.eval_on_selector_all("#grid > li", "cs => cs.map(c => c.id)")
    # Labels: 0 cat, 1 dog, 2 bird, 3 fish: A to Z is bird, cat, dog, fish.
    assert order == ["u0002", "u0000", "u0001", "u0003"]
    seen.page.fill("#grid-filter", "fish")
    shown = seen.page.locator("#grid > li:not([hidden])")
    assert shown.count() == 1 and shown.first.get_attribute("id") == "u0003"
    assert seen.page.inner_text("#grid-count") == "Showing 1 of 4 units."
    assert csp_messages(seen.console) == [] and seen.problems == []


# Crawling


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.links += [v for k, v in attrs if k in ("href", "src") and v]


def crawl(start: str) -> dict[str, int]:
    """Status of every URL reachable from `start` on its own server."""
    statuses: dict[str, int] = {}
    queue = [start]
    while queue:
        url = queue.pop()
        if url in statuses:
            continue
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                statuses[url] = response.status
                body = response.read()
                kind = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            statuses[url] = error.code
            continue
        if kind.startswith("text/html"):
            parser = _Links()
            parser.feed(body.decode("utf-8"))
            for link in parser.links:
                target = urldefrag(urljoin(url, link)).url
                if target.startswith(start):
                    queue.append(target)
    return statuses
