"""PNG sheets of top-k crops: cell sizes, gaps, display sizes."""

from __future__ import annotations

import numpy as np

from atlas.site import images


def test_topk_sheet_transparent_gaps_between_cells():
    crops = [np.full((3, 3, 1), 200, np.uint8), np.full((3, 3, 1), 50, np.uint8)]
    sheet = np.asarray(images.topk_sheet(crops, (3, 3)))
    assert sheet.shape == (39, 39 + 2 + 39, 2)
    assert (sheet[:, :39] == (200, 255)).all()
    assert (sheet[:, 39:41, 1] == 0).all()
    assert (sheet[:, 41:] == (50, 255)).all()


def test_sheet_cell_small_crop_grows_by_whole_factor():
    assert images.sheet_cell((3, 3)) == (39, 39)
    assert images.sheet_cell((12, 8)) == (36, 24)
    assert images.sheet_cell((100, 60)) == (100, 60)


def test_sheet_size_counts_gaps_between_cells_only():
    assert images.sheet_size((3, 3), 1) == (39, 39)
    assert images.sheet_size((3, 3), 9) == (39, 9 * 39 + 8 * 2)
    assert images.sheet_size((100, 100), 2) == (100, 2 * 100 + 5)


def test_display_size_tiny_image_upscales_pixelated():
    shown = images.display_size(6, 6, 96)
    assert (shown.width, shown.height, shown.pixelated) == (96, 96, True)


def test_display_size_large_image_shrinks_smoothly():
    shown = images.display_size(300, 150, 96)
    assert (shown.width, shown.height, shown.pixelated) == (48, 96, False)
