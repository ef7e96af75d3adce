"""The mask editor driven with real mouse and key events: brush, eraser, invert, clear, undo, zoom."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from ldm_studio.ui.mask_editor import MaskEditor, grey_array, grey_image


def checkerboard(size: int, cell: int = 1) -> QImage:
    image = QImage(size, size, QImage.Format.Format_RGB32)
    for y in range(size):
        for x in range(size):
            dark = (x // cell + y // cell) % 2
            image.setPixelColor(x, y, QColor(40, 40, 40) if dark else QColor(230, 200, 60))
    return image


def open_editor(qtbot, image: QImage, **kwargs) -> MaskEditor:
    editor = MaskEditor(image, **kwargs)
    qtbot.addWidget(editor)
    editor.resize(900, 760)
    editor.show()
    qtbot.waitExposed(editor)
    return editor


def at(editor: MaskEditor, x: float, y: float) -> QPoint:
    """The widget point over image coordinate (x, y)."""
    return editor.canvas.image_to_widget(x, y).toPoint()


def drag(editor: MaskEditor, points, button=Qt.MouseButton.LeftButton) -> None:
    canvas = editor.canvas
    QTest.mousePress(canvas, button, Qt.KeyboardModifier.NoModifier, at(editor, *points[0]))
    for point in points[1:]:
        QTest.mouseMove(canvas, at(editor, *point))
    QTest.mouseRelease(canvas, button, Qt.KeyboardModifier.NoModifier, at(editor, *points[-1]))


def mask_of(editor: MaskEditor) -> np.ndarray:
    image = editor.mask_image()
    assert image.format() == QImage.Format.Format_Grayscale8
    return grey_array(image)


@pytest.fixture
def small(qtbot) -> MaskEditor:
    editor = open_editor(qtbot, checkerboard(32))
    editor.size_box.setValue(1)
    return editor


def test_a_32_px_image_is_shown_enlarged_by_a_whole_factor_with_crisp_pixels(small):
    canvas = small.canvas
    scale = canvas.scale()
    assert scale >= 8 and scale == int(scale)
    shot = canvas.grab().toImage()
    left_top = canvas.image_to_widget(3, 3).toPoint()
    # Every screen pixel inside image pixel (3, 3) has its exact colour: nearest neighbour, no blur.
    inside = {
        shot.pixelColor(left_top + QPoint(dx, dy)).name()
        for dx in range(1, int(scale) - 1)
        for dy in (1, int(scale) // 2, int(scale) - 2)
    }
    assert inside == {QColor(230, 200, 60).name()}
    next_pixel = shot.pixelColor(left_top + QPoint(int(scale) + 1, 1)).name()
    assert next_pixel == QColor(40, 40, 40).name()


def test_dragging_paints_the_pixels_under_the_brush(small):
    assert not mask_of(small).any()
    drag(small, [(5.5, 5.5), (8.5, 5.5), (10.5, 5.5)])
    mask = mask_of(small)
    assert mask.shape == (32, 32)
    assert (mask[5, 5:11] == 255).all()
    assert mask.sum() == 6 * 255  # exactly that row segment with a 1 px brush
    assert "Mask: 1 % of the image" in small.coverage_label.text()


def test_a_bigger_brush_paints_a_wider_band(small):
    small.size_slider.setValue(5)
    assert small.canvas.brush_size == 5
    drag(small, [(4.5, 16.5), (27.5, 16.5)])
    mask = mask_of(small)
    assert mask[14:19, 4:28].all()
    assert not mask[13].any() and not mask[19].any()


def test_the_eraser_removes_paint(small):
    small.size_box.setValue(3)
    drag(small, [(4.5, 10.5), (20.5, 10.5)])
    assert mask_of(small)[9:12, 4:21].all()
    small.eraser_button.click()
    small.size_box.setValue(1)
    drag(small, [(10.5, 8.5), (10.5, 12.5)])
    mask = mask_of(small)
    assert not mask[9:12, 10].any()
    assert mask[9:12, 9].all() and mask[9:12, 11].all()
    small.brush_button.click()
    drag(small, [(10.5, 10.5)])
    assert mask_of(small)[10, 10] == 255


def test_right_drag_erases_even_with_the_brush(small):
    small.size_box.setValue(4)
    drag(small, [(8.0, 8.0), (24.0, 8.0)])
    painted = mask_of(small).copy()
    assert painted[7:9, 8:24].all()
    drag(small, [(16.5, 8.0)], button=Qt.MouseButton.RightButton)
    assert not mask_of(small)[7:9, 15:18].any()
    assert mask_of(small)[7:9, 8:12].all()


def test_invert_clear_and_undo(small):
    small.size_box.setValue(2)
    drag(small, [(4.0, 4.0)])
    painted = mask_of(small)
    assert painted.sum() == 4 * 255
    small.invert_button.click()
    assert (mask_of(small) == 255 - painted).all()
    small.clear_button.click()
    assert not mask_of(small).any()
    small.undo_button.click()
    assert (mask_of(small) == 255 - painted).all()
    small.undo_button.click()
    assert (mask_of(small) == painted).all()
    small.redo_button.click()
    assert (mask_of(small) == 255 - painted).all()


def test_ctrl_z_undoes_the_last_stroke(small, qtbot):
    small.activateWindow()
    qtbot.waitUntil(small.isActiveWindow)
    drag(small, [(3.5, 3.5)])
    drag(small, [(20.5, 20.5)])
    QTest.keyClick(small, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    mask = mask_of(small)
    assert mask[3, 3] == 255 and mask[20, 20] == 0
    QTest.keyClick(small, Qt.Key.Key_BracketRight)
    assert small.canvas.brush_size == 2 and small.size_box.value() == 2


def test_set_mask_round_trips_and_scales_other_sizes(small):
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[8:16, 20:30] = 255
    small.set_mask(grey_image(mask))
    assert (mask_of(small) == mask).all()
    assert not small.undo_button.isEnabled()  # a loaded mask is the starting point, not an edit
    half = np.zeros((16, 16), dtype=np.uint8)
    half[0:4, 0:4] = 255
    small.set_mask(grey_image(half))
    assert mask_of(small)[0:8, 0:8].all() and mask_of(small).sum() == 64 * 255


def test_feather_softens_the_preview_only(small):
    small.size_box.setValue(6)
    drag(small, [(16.0, 16.0)])
    hard = mask_of(small)
    outside = QPoint(21, 16)  # two pixels beyond the brush edge
    assert small.canvas.overlay().pixelColor(outside).alpha() == 0
    small.feather_box.setValue(3)
    assert small.feather() == 3.0
    assert small.canvas.overlay().pixelColor(outside).alpha() > 0
    assert (mask_of(small) == hard).all()  # the engine feathers; the saved mask stays hard


def test_wheel_zoom_keeps_painting_on_the_right_pixel(small):
    canvas = small.canvas
    before = canvas.scale()
    anchor = QPointF(at(small, 12.5, 12.5))
    wheel = QWheelEvent(
        anchor,
        canvas.mapToGlobal(anchor),
        QPoint(),
        QPoint(0, 240),
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QApplication.sendEvent(canvas, wheel)
    assert canvas.scale() == pytest.approx(before * 1.25**2)
    x, y = canvas.widget_to_image(anchor)
    assert (x, y) == (pytest.approx(12.5, abs=0.1), pytest.approx(12.5, abs=0.1))
    drag(small, [(25.5, 2.5)])
    assert mask_of(small)[2, 25] == 255 and mask_of(small).sum() == 255
    small.fit_button.click()
    assert canvas.scale() == before


def test_a_1024_px_image_fits_shrunk_and_paints_at_image_scale(qtbot):
    editor = open_editor(qtbot, checkerboard(1024, cell=64), feather=8)
    assert editor.canvas.scale() < 1
    assert editor.feather() == 8.0
    assert editor.canvas.brush_size == 64  # a sixteenth of the side by default
    drag(editor, [(200.0, 500.0), (800.0, 500.0)])
    mask = mask_of(editor)
    assert mask.shape == (1024, 1024)
    assert mask[500, 200:800].all() and mask[480:520, 500].all()
    assert not mask[560:, :].any() and not mask[:440, :].any()
