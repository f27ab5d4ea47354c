"""The probe page in headless Chromium: the grid follows a (fake) webcam,
a click shows the unit's map and atlas files (C18's policy holds), and on
an insecure origin the camera is explained away while uploads and dataset
images still work (C24)."""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from atlas.live.server import running
from tests.test_live_helpers import shared_live

CHROMIUM = os.environ.get("ATLAS_CHROMIUM", "/usr/bin/chromium")
INSECURE_HOST = "probe.test"  # resolved to 127.0.0.1 by Chromium alone
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1",
]
WAIT_MS = 60_000

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests need Playwright for Python"
)
if shutil.which(CHROMIUM) is None:
    pytest.skip(
        f"the browser tests need Chromium at {CHROMIUM} (set ATLAS_CHROMIUM)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = shared_live(tmp_path_factory)
    with running(live, extra=[INSECURE_HOST]) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.set_default_timeout(WAIT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda m: page.errors.append(m.text) if _policy(m) else None)
    yield page
    page.close()


def _policy(message) -> bool:
    text = message.text
    return "Content Security Policy" in text or "Refused to" in text


def frames_past(page, count: int) -> None:
    page.wait_for_function(
        "n => Number(document.getElementById('probe').dataset.frames || 0) > n",
        arg=count,
    )


def frames(page) -> int:
    return int(page.get_attribute("#probe", "data-frames") or 0)


def test_probe_follows_the_webcam_and_shows_a_unit(server, page):
    page.goto(f"{server}/layers/c1.html")
    page.click("text=Probe this layer live")
    page.wait_for_url("**/live/probe.html?layer=c1")
    frames_past(page, 0)

    page.click("#source-camera")
    start = frames(page)
    frames_past(page, start + 10)
    grid = page.locator("#grid").bounding_box()
    page.mouse.click(
        grid["x"] + grid["width"] * 0.75, grid["y"] + grid["height"] * 0.75
    )
    page.wait_for_function("() => document.getElementById('unit-map').naturalWidth > 0")

    assert page.get_attribute("#source-camera", "aria-pressed") == "true"
    assert page.text_content("#unit-title") == "Unit 3 of c1"
    assert page.eval_on_selector("#unit-map", "i => i.naturalWidth") == 12
    assert "map of unit 3" in page.text_content("#unit-map-caption")
    loaded = "i => i.complete && i.naturalWidth > 0"
    assert page.eval_on_selector("#unit-sheet", loaded)
    assert page.eval_on_selector_all("#unit-images img", f"l => l.every({loaded})")
    unit_page = page.get_attribute("#unit-page", "href")
    assert unit_page == "../units/c1/0003.html"
    assert page.goto(f"{server}/live/{unit_page}").ok
    assert page.errors == []


def caption_starts(page, text: str) -> None:
    page.wait_for_function(
        "t => document.getElementById('unit-map-caption').textContent.startsWith(t)",
        arg=text,
    )


def test_unit_link_buttons_and_map_choice_reach_across_the_scripts(server, page):
    page.goto(f"{server}/live/probe.html?layer=c1&unit=2")
    caption_starts(page, "Deconvnet map of unit 2")
    assert page.text_content("#unit-title") == "Unit 2 of c1"

    buttons = page.locator("#top-units button")
    labels = [buttons.nth(i).text_content() for i in range(buttons.count())]
    pick = next(i for i, label in enumerate(labels) if label.split()[1] != "2")
    unit = labels[pick].split()[1]
    buttons.nth(pick).click()
    caption_starts(page, f"Deconvnet map of unit {unit}")
    assert page.text_content("#unit-title") == f"Unit {unit} of c1"

    page.select_option("#method-select", "gradient")
    caption_starts(page, f"Gradient map of unit {unit}")
    assert page.errors == []


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_insecure_origin_explains_the_camera_and_keeps_other_inputs(server, page):
    port = server.rsplit(":", 1)[1]
    page.goto(f"http://{INSECURE_HOST}:{port}/live/probe.html?layer=c2")
    frames_past(page, 0)

    message = page.locator("#camera-message")
    assert message.is_visible()
    assert "secure" in message.text_content()
    assert f"http://127.0.0.1:{port}/live/probe.html" in message.text_content()
    assert page.is_disabled("#source-camera")

    photo = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    upload = {"name": "photo.png", "mimeType": "image/png", "buffer": png(photo)}
    start = frames(page)
    page.set_input_files("#source-upload", files=[upload])
    frames_past(page, start)
    assert "photo.png" in page.text_content("#input-status")

    text = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"no pixels"}
    page.set_input_files("#source-upload", files=[text])
    page.wait_for_function(
        "() => document.getElementById('input-status').classList.contains('error')"
    )
    assert "not an image" in page.text_content("#input-status")

    start = frames(page)
    page.fill("#dataset-index", "7")
    page.click("#dataset-show")
    frames_past(page, start)
    assert "dataset image 7" in page.text_content("#input-status")
    assert page.errors == []


def test_a_layer_outside_the_atlas_says_so_after_its_map(server, page):
    page.goto(f"{server}/live/probe.html?layer=p1&unit=1")
    caption_starts(page, "Deconvnet map of unit 1")
    status = page.text_content("#unit-status")
    assert "This layer is not in the atlas" in status
    assert page.is_hidden("#unit-page")
    assert page.errors == []


def test_a_gray_model_sees_its_input_shown_in_gray(server, page):
    page.goto(f"{server}/live/probe.html?layer=c1")
    frames_past(page, 0)
    assert "probe-gray" in page.get_attribute("#probe", "class")
    style = "c => getComputedStyle(c).filter"
    assert page.eval_on_selector("#input-canvas", style) == "grayscale(1)"
    assert page.errors == []
