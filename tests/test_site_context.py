"""The "in context" strip: whole source images with the receptive-field box
outlined and the rest dimmed, its sheet, its page and its manifest entry."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from atlas.records import Box, LayerRecord, UnitRecord
from atlas.site import render_site
from atlas.site.context import (
    OUTLINE,
    context_sheet,
    context_tile,
    plan_context,
)
from tests.helpers import broken_links
from tests.site_records import (
    make_atlas,
    make_info,
    make_unit,
    parse,
    read_json,
    site_units,
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
SOURCE = 28  # digits-sized source images: grown 3x to 84 px


def with_context(unit: UnitRecord, size: int = SOURCE, channels: int = 1):
    """`unit` whose top-k carry whole source images and boxes in them."""
    rng = np.random.default_rng(50 + unit.index)
    top = [
        replace(
            ex,
            box=Box(rank - 1, 20, rank + 2, size + 3),  # past the border
            context=rng.integers(0, 256, (size, size, channels), dtype=np.uint8),
        )
        for rank, ex in enumerate(unit.top_k)
    ]
    return replace(unit, top_k=top)


def conv_layer(name: str = "c1", **image) -> LayerRecord:
    units = [with_context(make_unit(i), **image) for i in range(2)]
    return LayerRecord(make_info(name, 2), units)


def expected_tile(fitted: np.ndarray, box: tuple[int, int, int, int]):
    """The documented rule, written out: halfway to grey outside the box,
    the fitted source inside, the outline on the box's border pixels."""
    top, left, bottom, right = box
    want = (fitted.astype(np.int64) + 128 + 1) // 2
    want[top:bottom, left:right] = fitted[top:bottom, left:right]
    for rows, cols in (
        (top, slice(left, right)),
        (bottom - 1, slice(left, right)),
        (slice(top, bottom), left),
        (slice(top, bottom), right - 1),
    ):
        want[rows, cols] = OUTLINE
    return want


def test_plan_context_grows_digits_by_a_whole_factor():
    plan = plan_context(conv_layer())
    assert plan.source == (SOURCE, SOURCE)
    assert plan.sheet.cell == (84, 84)
    assert (plan.sheet.smooth, plan.pixelated) == (False, True)


def test_plan_context_narrows_cells_until_the_top_k_fit_the_page():
    # Nine 32-px images at 96 px (3x) would need 904 px; 2x fits in 600.
    units = [with_context(make_unit(0, k=9), size=32)]
    plan = plan_context(LayerRecord(make_info("c", 1), units))
    assert plan.sheet.cell == (64, 64) and plan.pixelated
    assert plan.sheet.size(9) == (64, 9 * 64 + 8 * 3)


def test_plan_context_dense_layer_or_no_images_has_none():
    units = [with_context(make_unit(i)) for i in range(2)]
    assert plan_context(LayerRecord(make_info("fc", 2, kind="dense"), units)) is None
    plain = [make_unit(i) for i in range(2)]
    assert plan_context(LayerRecord(make_info("c", 2), plain)) is None


def test_context_tile_keeps_the_clipped_box_and_dims_the_rest():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (SOURCE, SOURCE, 1), dtype=np.uint8)
    plan = plan_context(conv_layer())
    tile = np.asarray(context_tile(image, Box(-1, 20, 2, 31), plan), np.int64)

    grown = np.repeat(np.repeat(image[..., 0], 3, axis=0), 3, axis=1)
    fitted = np.repeat(grown[..., None], 3, axis=2)
    # Clipped to (0, 20, 2, 28) in the source, times 3.
    box = (0, 60, 6, 84)
    np.testing.assert_array_equal(tile, expected_tile(fitted, box))
    np.testing.assert_array_equal(tile[1:5, 61:83], fitted[1:5, 61:83])
    assert tile[10, 10].tolist() == [(int(fitted[10, 10, 0]) + 129) // 2] * 3
    assert tile[0, 60].tolist() == list(OUTLINE)
    assert tile[5, 83].tolist() == list(OUTLINE)


def test_context_tile_shrinks_large_images_smoothly_before_dimming():
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (200, 100, 3), dtype=np.uint8)
    layer = conv_layer(size=200, channels=3)
    unit = layer.units[0]
    top = [replace(ex, context=image) for ex in unit.top_k]
    plan = plan_context(LayerRecord(layer.info, [replace(unit, top_k=top)]))
    assert plan.sheet.cell == (96, 48) and plan.sheet.smooth
    assert not plan.pixelated

    tile = np.asarray(context_tile(image, Box(50, 10, 150, 60), plan), np.int64)
    fitted = np.asarray(Image.fromarray(image).resize((48, 96), Image.LANCZOS))
    np.testing.assert_array_equal(tile, expected_tile(fitted, (24, 5, 72, 29)))


def test_context_sheet_lays_tiles_best_first_with_gaps():
    layer = conv_layer()
    plan = plan_context(layer)
    examples = layer.units[1].top_k
    sheet = np.asarray(context_sheet(examples, plan))
    assert sheet.shape == (84, 3 * 84 + 2 * plan.sheet.gap, 4)
    for position, ex in enumerate(examples):
        left = position * (84 + plan.sheet.gap)
        tile = np.asarray(context_tile(ex.context, ex.box, plan))
        np.testing.assert_array_equal(sheet[:, left : left + 84, :3], tile)
        assert (sheet[:, left : left + 84, 3] == 255).all()
    assert (sheet[:, 84 : 84 + plan.sheet.gap, 3] == 0).all()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    conv = conv_layer()
    dense_units = [with_context(make_unit(i)) for i in range(2)]
    dense = LayerRecord(make_info("fc", 2, kind="dense"), dense_units)
    dead = LayerRecord(make_info("d", 1), [make_unit(0, k=0)])
    folder = tmp_path_factory.mktemp("context")
    render_site(make_atlas([conv, dense, dead]), folder, TEMPLATES)
    return folder


def test_context_sheet_is_listed_written_and_linked(site):
    layer = conv_layer()
    plan = plan_context(layer)
    units = {(lay["name"], unit["index"]): unit for lay, unit in site_units(site)}
    for record in layer.units:
        unit = units[("c1", record.index)]
        path = unit["sheets"]["context"]
        assert path == f"img/c1/{record.index:04d}-context.png"
        with Image.open(site / path) as image:
            pixels = np.asarray(image)
        want = np.asarray(context_sheet(record.top_k, plan))
        np.testing.assert_array_equal(pixels, want)
        page = site / unit["page"]
        shown = [a for tag, a in parse(page).tags if tag == "img"]
        (img,) = [a for a in shown if a["src"].endswith("-context.png")]
        assert (site / unit["page"]).parent.joinpath(img["src"]).resolve() == (
            (site / path).resolve()
        )
        assert "receptive field" in img["alt"] and "dimmed" in img["alt"]
        assert (img["width"], img["height"]) == (str(3 * 84 + 2 * 4), "84")
        assert "pixelated" in img["class"]
        assert "In context" in page.read_text(encoding="utf-8")


def test_context_sheet_absent_for_dense_layers_and_dead_units(site):
    manifest = read_json(site / "manifest.json")
    sheets = {lay["name"]: lay["context_sheet"] for lay in manifest["layers"]}
    assert sheets == {"c1": {"cell": [84, 84], "gap": 4}, "fc": None, "d": None}
    for lay, unit in site_units(site):
        if lay["name"] != "c1":
            assert unit["sheets"]["context"] is None
            page = (site / unit["page"]).read_text(encoding="utf-8")
            assert "In context" not in page
    assert not list(site.rglob("img/fc/*context*"))
    assert not list(site.rglob("img/d/*context*"))


def test_context_site_links_all_resolve(site):
    assert broken_links(site) == []


def test_a_large_source_is_kept_as_a_thumbnail_with_its_box_scaled():
    """Memory holds a cell-sized copy per distinct image, not the source:
    the box follows it to the thumbnail's pixels, grown outward."""
    from atlas.assemble import scaled_box, shrunk

    image = np.random.default_rng(0).integers(0, 256, (200, 100, 3), np.uint8)
    small = shrunk(image, 96)
    assert small.shape == (96, 48, 3) and small.dtype == np.uint8
    assert abs(float(small.mean()) - float(image.mean())) < 3
    assert shrunk(image[:32, :32], 96).shape == (32, 32, 3)
    box = scaled_box(Box(10, 20, 31, 41), (200, 100), (96, 48))
    assert box == Box(4, 9, 15, 20)
    assert scaled_box(Box(-3, -3, 4, 4), (200, 100), (96, 48)) == Box(-2, -2, 2, 2)
    assert scaled_box(Box(1, 2, 3, 4), (32, 32), (32, 32)) == Box(1, 2, 3, 4)
