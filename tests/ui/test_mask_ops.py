"""The Qt-free mask pixel logic: brush stamps, coverage, feathering like the engine, saving."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from ldm_studio.ui import mask_ops


def painted_pixels(mask: np.ndarray) -> set[tuple[int, int]]:
    return {(int(x), int(y)) for y, x in zip(*np.nonzero(mask), strict=True)}


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (1, {(5, 5)}),
        (2, {(4, 4), (5, 4), (4, 5), (5, 5)}),
        (3, {(x, y) for x in (4, 5, 6) for y in (4, 5, 6)}),
    ],
)
def test_small_brushes_cover_whole_pixels_around_the_pointer(size, expected):
    mask = mask_ops.empty_mask(12, 12)
    centre = mask_ops.brush_centre(5.3, 5.4, size)
    mask_ops.paint_segment(mask, centre, centre, size)
    assert painted_pixels(mask) == expected
    assert set(np.unique(mask)) == {0, 255}


def test_a_round_brush_is_round():
    mask = mask_ops.empty_mask(40, 40)
    mask_ops.paint_segment(mask, (20.5, 20.5), (20.5, 20.5), 11)
    ys, xs = np.nonzero(mask)
    distances = np.hypot(xs + 0.5 - 20.5, ys + 0.5 - 20.5)
    assert distances.max() <= 5.5
    assert mask[20, 15] and mask[20, 25] and mask[15, 20]
    assert not mask[15, 15]  # the corner of the bounding square is outside the circle
    assert abs(len(xs) - np.pi * 5.5**2) < 12


def test_a_segment_paints_a_continuous_band_and_nothing_beyond():
    mask = mask_ops.empty_mask(64, 32)
    box = mask_ops.paint_segment(mask, (4.5, 10.5), (50.5, 10.5), 5)
    assert box is not None
    assert mask[8:13, 4:51].all()  # rows 8..12: within 2.5 px of the line
    assert not mask[7].any() and not mask[13].any()
    assert not mask[:, 54:].any()


def test_eraser_value_and_off_image_strokes():
    mask = np.full((16, 16), 255, dtype=np.uint8)
    mask_ops.paint_segment(mask, (8.5, 8.5), (8.5, 8.5), 3, mask_ops.KEPT)
    assert painted_pixels(mask_ops.inverted(mask)) == {(x, y) for x in (7, 8, 9) for y in (7, 8, 9)}
    untouched = mask.copy()
    assert mask_ops.paint_segment(mask, (-30.0, -30.0), (-20.0, -25.0), 4) is None
    assert (mask == untouched).all()


def test_coverage_counts_the_repainted_share():
    mask = mask_ops.empty_mask(10, 10)
    mask[:, :3] = 255
    mask[0, 5] = 100  # below half: kept
    assert mask_ops.coverage(mask) == pytest.approx(0.3)
    assert mask_ops.coverage(mask_ops.inverted(mask)) == pytest.approx(0.7)


def test_feathering_matches_the_engine_blur():
    mask = mask_ops.empty_mask(48, 48)
    mask[10:30, 10:30] = 255
    soft = mask_ops.feathered(mask, 4)
    engine = np.asarray(Image.fromarray(mask).filter(ImageFilter.GaussianBlur(4)))
    assert (soft == engine).all()
    assert 0 < soft[20, 31] < 255  # the edge is soft
    assert mask_ops.feathered(mask, 0) is mask


def test_overlay_tints_in_proportion_to_the_mask():
    mask = np.array([[0, 128, 255]], dtype=np.uint8)
    rgba = mask_ops.overlay_rgba(mask, (255, 0, 0), 0.5)
    assert rgba.shape == (1, 3, 4)
    assert rgba[0, 0].tolist() == [0, 0, 0, 0]
    assert rgba[0, 2].tolist() == [128, 0, 0, 128]  # premultiplied: red = alpha
    assert 60 <= rgba[0, 1, 3] <= 68


def test_saved_masks_are_named_by_content(tmp_path):
    first = mask_ops.empty_mask(8, 8)
    first[2:4, 2:4] = 255
    second = mask_ops.inverted(first)
    path_one = mask_ops.save_mask(first, tmp_path / "masks")
    assert mask_ops.save_mask(first.copy(), tmp_path / "masks") == path_one
    path_two = mask_ops.save_mask(second, tmp_path / "masks")
    assert path_two != path_one
    assert (mask_ops.read_mask(path_one, (8, 8)) == first).all()
    assert (mask_ops.read_mask(path_two, (8, 8)) == second).all()
    assert mask_ops.read_mask(path_one, (16, 16))[4:8, 4:8].all()  # nearest scaling keeps it hard
    assert not list((tmp_path / "masks").glob("*.part"))


@pytest.mark.parametrize("feather", [0.0, 1.5, 6.0, 13.0])
def test_refreshing_around_a_stroke_equals_rebuilding_the_overlay(feather):
    rng = np.random.default_rng(7)
    table = mask_ops.overlay_table((255, 59, 48), 0.45)
    mask = mask_ops.empty_mask(160, 120)
    mask[rng.integers(0, 120, 40), rng.integers(0, 160, 40)] = 255
    pixels = table[mask_ops.feathered(mask, feather)].copy()
    for start, end, value in [
        ((20.5, 30.5), (90.5, 60.5), 255),
        ((150.0, 5.0), (158.0, 118.0), 255),
        ((60.5, 40.5), (70.5, 45.5), 0),
    ]:
        box = mask_ops.paint_segment(mask, start, end, 9, value)
        mask_ops.refresh_overlay(pixels, mask, box, feather, table)
    rebuilt = table[mask_ops.feathered(mask, feather)]
    assert (pixels == rebuilt).all()
