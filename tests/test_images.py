"""Image files and sheets: cell sizes, gaps, heatmap overlays, encodings."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from atlas.errors import BuildError
from atlas.site import images, sheets


def test_crop_sheet_transparent_gaps_between_cells():
    crops = [np.full((3, 3, 1), 200, np.uint8), np.full((3, 3, 1), 50, np.uint8)]
    geometry = sheets.plan_sheet((3, 3))
    sheet = np.asarray(sheets.crop_sheet(crops, geometry))
    assert sheet.shape == (39, 39 + 2 + 39, 2)
    assert (sheet[:, :39] == (200, 255)).all()
    assert (sheet[:, 39:41, 1] == 0).all()
    assert (sheet[:, 41:] == (50, 255)).all()


def test_plan_sheet_small_crop_grows_by_whole_factor():
    assert sheets.plan_sheet((3, 3)).cell == (39, 39)
    assert sheets.plan_sheet((12, 8)).cell == (36, 24)
    assert sheets.plan_sheet((100, 60)).cell == (100, 60)
    assert not sheets.plan_sheet((100, 60)).smooth


def test_plan_sheet_large_crop_shrinks_smoothly_to_limit():
    geometry = sheets.plan_sheet((400, 200))
    assert (geometry.cell, geometry.smooth) == ((192, 96), True)
    assert sheets.plan_sheet((400, 200), sheets.GRID_CELL).cell == (80, 40)


def test_sheet_size_counts_gaps_between_cells_only():
    assert sheets.plan_sheet((3, 3)).size(1) == (39, 39)
    assert sheets.plan_sheet((3, 3)).size(9) == (39, 9 * 39 + 8 * 2)
    assert sheets.plan_sheet((100, 100)).size(2) == (100, 2 * 100 + 5)


def test_heat_overlay_full_heat_shows_colour_map_top():
    crop = np.zeros((2, 2, 3), np.uint8)
    heat = np.array([[255, 0], [0, 0]], np.uint8)
    pixels = np.asarray(sheets.heat_overlay(crop, heat))
    assert pixels[0, 0].tolist() == [252, 255, 164]
    assert pixels[1, 1].tolist() == [0, 0, 0]


def test_heat_overlay_no_heat_dims_the_crop():
    crop = np.full((1, 1, 1), 200, np.uint8)
    pixels = np.asarray(sheets.heat_overlay(crop, np.zeros((1, 1), np.uint8)))
    assert pixels[0, 0].tolist() == [90, 90, 90]


def test_heat_sheet_missing_heatmap_leaves_cell_empty():
    crops = [np.full((3, 3, 3), 9, np.uint8)] * 2
    geometry = sheets.plan_sheet((3, 3))
    heat = np.full((3, 3), 255, np.uint8)
    sheet = np.asarray(sheets.heat_sheet(crops, [heat, None], geometry))
    assert sheet.shape == (39, 80, 4)
    assert (sheet[:, :39, 3] == 255).all()
    assert (sheet[:, 41:, 3] == 0).all()


def test_display_size_tiny_image_upscales_pixelated():
    shown = images.display_size(6, 6, 96)
    assert (shown.width, shown.height, shown.pixelated) == (96, 96, True)


def test_display_size_large_image_shrinks_smoothly():
    shown = images.display_size(300, 150, 96)
    assert (shown.width, shown.height, shown.pixelated) == (48, 96, False)


def test_thumbnail_only_for_images_past_twice_the_grid_size():
    assert not images.needs_thumbnail(np.zeros((192, 100, 3), np.uint8))
    big = np.zeros((400, 200, 3), np.uint8)
    assert images.needs_thumbnail(big)
    assert images.thumbnail(big).size == (96, 192)


def test_encode_lossy_is_webp_and_stable():
    image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(4, 4, 3))
    data = images.encode(image, lossy=True)
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    assert images.encode(image, lossy=True) == data
    assert Image.open(io.BytesIO(data)).size == (4, 4)
    assert images.encode(image)[:4] == b"\x89PNG"


def test_check_heatmap_float_names_the_fix():
    with pytest.raises(BuildError, match=r"heat.*float32.*0-255 uint8"):
        images.check_heatmap(np.zeros((3, 3), np.float32), "heat")
