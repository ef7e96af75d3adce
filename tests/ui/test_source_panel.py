"""The “Start from an image” panel: choosing, dropping, strength and fit into the request, the mask
painted in the editor saved where the engine reads it back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from ldm_studio.engine.images import mask_tensor, open_image
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.paths import user_dirs
from ldm_studio.ui.mask_editor import grey_image
from ldm_studio.ui.source_panel import SourcePanel, SourceSettings

REQUEST = GenerationRequest(prompt="a fox", seed=1, width=64, height=64, extras={"note": "kept"})


@pytest.fixture
def panel(qtbot) -> SourcePanel:
    panel = SourcePanel()
    qtbot.addWidget(panel)
    panel.resize(380, 400)
    panel.show()
    return panel


@pytest.fixture
def photo(tmp_path) -> Path:
    rng = np.random.default_rng(3)
    path = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def emoji(tmp_path) -> Path:
    path = tmp_path / "emoji.png"
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    image.paste((255, 200, 40, 255), (4, 4, 28, 28))
    image.save(path)
    return path


def drag_on_canvas(editor, points) -> None:
    canvas = editor.canvas

    def at(x: float, y: float) -> QPoint:
        return canvas.image_to_widget(x, y).toPoint()

    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*points[0]))
    for point in points[1:]:
        QTest.mouseMove(canvas, at(*point))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(*points[-1]))


def paint_mask(qtbot, panel: SourcePanel, points, brush: int = 4, feather: int = 0):
    editor = panel.open_mask_editor()
    assert editor is not None and panel.mask_editor is editor
    qtbot.waitExposed(editor)
    editor.size_box.setValue(brush)
    editor.feather_box.setValue(feather)
    drag_on_canvas(editor, points)
    return editor


def test_without_an_image_requests_stay_text_to_image(panel):
    assert panel.source() is None
    stale = REQUEST.replace(init_image="old.png", strength=0.3, mask="m.png", extras={"resize_mode": "pad"})
    plain = panel.apply_to(stale)
    assert (plain.init_image, plain.strength, plain.mask, plain.extras) == ("", 1.0, "", {})
    assert not panel.controls.isVisibleTo(panel)
    assert not panel.is_expanded()


def test_choosing_an_image_sets_path_strength_and_fit(panel, photo, qtbot, monkeypatch):
    monkeypatch.setattr(panel, "_ask_for_image", lambda: str(photo))
    with qtbot.waitSignal(panel.changed):
        panel.choose_button.click()
    assert panel.is_expanded() and panel.controls.isVisibleTo(panel)
    assert panel.image_size() == (64, 48)
    assert panel.size_label.text() == "64 × 48 px"
    assert panel.name_label.text() == "photo.jpg"
    assert not panel.thumbnail.pixmap().isNull()
    assert panel.source() == SourceSettings(image_path=str(photo), strength=0.75, resize_mode="resize")

    panel.strength_slider.setValue(40)
    assert panel.strength_box.value() == pytest.approx(0.40)
    with qtbot.waitSignal(panel.changed):
        panel.resize_mode.setCurrentIndex(panel.resize_mode.findText("Crop to fill"))
    request = panel.apply_to(REQUEST)
    assert request.init_image == str(photo)
    assert request.strength == pytest.approx(0.40)
    assert request.mask == ""
    assert request.extras == {"note": "kept", "resize_mode": "crop"}
    panel.strength_box.setValue(0.9)
    assert panel.strength_slider.value() == 90
    assert panel.apply_to(REQUEST).strength == pytest.approx(0.9)


def test_the_section_collapses_but_says_an_image_is_in_use(panel, photo):
    panel.set_image(photo)
    panel.header.click()
    assert not panel.body.isVisibleTo(panel)
    assert "photo.jpg" in panel.summary.text() and "0.75" in panel.summary.text()
    assert panel.apply_to(REQUEST).init_image == str(photo)  # collapsing does not switch it off
    panel.header.click()
    assert panel.body.isVisibleTo(panel) and panel.summary.text() == ""


def test_clear_button_stops_using_the_image(panel, photo, qtbot):
    panel.set_image(photo)
    with qtbot.waitSignal(panel.changed):
        panel.clear_button.click()
    assert panel.source() is None
    assert panel.empty_face.isVisibleTo(panel) and not panel.image_face.isVisibleTo(panel)


def test_an_unreadable_file_is_refused_with_a_reason(panel, photo, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    panel.set_image(photo)
    assert panel.set_image(broken) is False
    assert "broken.png cannot be used" in panel.error_label.text()
    assert panel.error_label.isVisibleTo(panel)
    assert panel.source().image_path == str(photo)  # the previous image stays
    assert panel.set_image(photo) and not panel.error_label.isVisibleTo(panel)


def send_drop(panel: SourcePanel, paths: list[Path]) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    point = QPointF(panel.drop_zone.geometry().center())
    enter = QDragEnterEvent(
        point.toPoint(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(panel, enter)
    drop = QDropEvent(
        point, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(panel, drop)
    return enter


def test_dropping_an_image_file_sets_it_and_other_files_are_ignored(panel, emoji, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    assert not send_drop(panel, [notes]).isAccepted()
    assert panel.source() is None
    assert send_drop(panel, [notes, emoji]).isAccepted()
    assert panel.source().image_path == str(emoji)
    assert panel.image_size() == (32, 32)


def test_a_painted_mask_is_saved_where_the_engine_reads_it(panel, emoji, qtbot):
    panel.set_image(emoji)
    editor = paint_mask(qtbot, panel, [(4.0, 8.0), (28.0, 8.0)], brush=4, feather=2)
    with qtbot.waitSignal(panel.changed):
        editor.accept()
    settings = panel.source()
    mask_path = Path(settings.mask_path)
    assert mask_path.parent == user_dirs().cache / "masks"
    assert mask_path.suffix == ".png" and mask_path.is_file()
    assert settings.feather == 2.0
    share = np.count_nonzero(np.asarray(Image.open(mask_path))) / (32 * 32)
    assert 0.09 < share < 0.12  # a 4 px band 24 px long with round ends
    assert panel.mask_label.text() == f"Mask: {share * 100:.0f} % of the image · feather 2 px"
    assert panel.inpaint_button.text() == "Edit mask…"

    request = panel.apply_to(REQUEST)
    assert request.mask == str(mask_path)
    assert request.extras["mask_feather"] == 2.0 and "mask_invert" not in request.extras
    mask = mask_tensor(open_image(request.mask, mode="L"), (32, 32), 0.0, "resize")[0, 0].numpy()
    assert mask[6:10, 4:28].min() > 0.99  # the painted band is repainted
    assert mask[:5].max() < 0.01 and mask[11:].max() < 0.01  # the rest is kept
    upscaled = mask_tensor(open_image(request.mask, mode="L"), (64, 64), 0.0, "resize")[0, 0].numpy()
    assert upscaled[15:18, 32].min() > 0.9 and upscaled[40, 32] < 0.01  # Lanczos rings a little


def test_reopening_the_editor_shows_the_saved_mask(panel, emoji, qtbot):
    panel.set_image(emoji)
    first = paint_mask(qtbot, panel, [(16.0, 16.0)], brush=6)
    painted = first.mask_array()
    first.accept()
    again = panel.open_mask_editor()
    assert (again.mask_array() == painted).all()
    again.reject()
    assert panel.source().mask_path  # cancelling keeps the mask


def test_cancel_or_an_empty_mask_leaves_no_mask(panel, emoji, qtbot):
    panel.set_image(emoji)
    paint_mask(qtbot, panel, [(16.0, 16.0)]).reject()
    assert panel.source().mask_path == ""
    editor = paint_mask(qtbot, panel, [(16.0, 16.0)])
    editor.clear_button.click()
    editor.accept()
    assert panel.source().mask_path == ""
    assert not panel.clear_mask_button.isVisibleTo(panel)


def test_clear_mask_and_a_new_image_drop_the_mask(panel, emoji, photo, qtbot):
    panel.set_image(emoji)
    paint_mask(qtbot, panel, [(10.0, 10.0)]).accept()
    assert panel.source().mask_path
    panel.clear_mask_button.click()
    assert panel.source().mask_path == ""
    paint_mask(qtbot, panel, [(10.0, 10.0)]).accept()
    panel.set_image(photo)  # a mask belongs to the picture it was painted on
    assert panel.source().mask_path == ""


def test_a_reused_request_round_trips_and_an_inverted_mask_is_baked_in(panel, emoji, tmp_path, qtbot):
    mask = np.zeros((32, 32), dtype=np.uint8)
    mask[:, :8] = 255
    mask_path = tmp_path / "cli-mask.png"
    Image.fromarray(mask).save(mask_path)
    reused = REQUEST.replace(
        init_image=str(emoji),
        strength=0.55,
        mask=str(mask_path),
        extras={"resize_mode": "pad", "mask_feather": 3.0, "mask_invert": True},
    )
    settings = SourceSettings.from_request(reused)
    assert panel.set_source(settings)
    assert panel.source() == settings
    assert panel.apply_to(REQUEST.replace(extras=reused.extras)) == reused
    assert panel.mask_label.text().startswith("Mask: 75 % of the image")

    editor = panel.open_mask_editor()
    assert (editor.mask_array() == 255 - mask).all()  # the editor shows what will be repainted
    editor.accept()
    baked = panel.source()
    assert baked.invert is False and baked.feather == 3.0
    assert (np.asarray(Image.open(baked.mask_path)) == 255 - mask).all()


def test_set_mask_accepts_a_qimage_in_the_editor_from_the_panel(panel, photo, qtbot):
    panel.set_image(photo)
    editor = panel.open_mask_editor()
    assert editor.canvas.image_size().width() == 64 and editor.canvas.image_size().height() == 48
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[10:20, 30:40] = 255
    editor.set_mask(grey_image(mask))
    editor.accept()
    assert panel.mask_label.text() == f"Mask: {100 * 100 / (48 * 64):.0f} % of the image"
