"""Upscale… in the gallery: the context-menu and viewer entries, the dialog's choices, the status-bar
progress with its Cancel button (offscreen)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtWidgets import QDialog, QMenu

from ldm_studio.app.gallery_actions import GalleryActions
from ldm_studio.app.jobs import TASK_UPSCALE
from ldm_studio.app.upscale_task import UpscalerChoice
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.index import GalleryIndex
from ldm_studio.gallery.store import GalleryStore
from ldm_studio.gallery.thumbnails import ThumbnailCache
from ldm_studio.gallery.trash import Trash
from ldm_studio.ui import gallery_panel, upscale_dialog
from ldm_studio.ui.gallery_panel import GalleryPanel
from ldm_studio.ui.upscale_dialog import UpscaleDialog, ask_and_upscale

CHOICES = [
    UpscalerChoice("Lanczos", "Lanczos", None),
    UpscalerChoice("Bicubic", "Bicubic", None),
    UpscalerChoice("4x-Tiny (4×)", "/upscalers/4x-Tiny.pth", 4),
    UpscalerChoice("SwinIR-x2", "/upscalers/SwinIR-x2.pth", None, "a SwinIR upscaler; install spandrel"),
]


class FakeSession:
    """What the dialog asks of the session: the gallery, the choices, and the intent."""

    def __init__(self, gallery: GalleryActions) -> None:
        self.gallery = gallery
        self.upscales: list[tuple[Path, str, int]] = []

    def upscaler_choices(self) -> list[UpscalerChoice]:
        return CHOICES

    def upscale_image(self, source: Path, upscaler: str, scale: int) -> bool:
        self.upscales.append((source, upscaler, scale))
        return True


@pytest.fixture
def panel(tmp_path, qtbot, monkeypatch):
    monkeypatch.setattr(GalleryPanel, "SCAN_DELAY_MS", 0)
    store = GalleryStore(tmp_path / "gallery")
    index = GalleryIndex()
    request = GenerationRequest(prompt="a lighthouse", seed=1, width=24, height=16)
    index.add(store.save(Image.new("RGB", (24, 16)), request, model_name="m", model_hash="h"))
    actions = GalleryActions(
        store, index, ThumbnailCache(), trash=Trash(tmp_path / "trash", use_system_trash=False)
    )
    panel = GalleryPanel(actions)
    scanned = qtbot.waitSignal(panel.model.reconciled, timeout=10_000)
    qtbot.addWidget(panel)
    panel.resize(800, 500)
    panel.show()
    scanned.wait()
    yield panel
    actions.shutdown()


def test_the_context_menu_offers_upscale_which_opens_the_dialog(qtbot, panel, monkeypatch):
    shown: list[list[str]] = []

    class RecordedMenu(QMenu):
        def exec(self, *_args) -> None:  # the real one would block the test
            shown.append([action.text() for action in self.actions()])

    monkeypatch.setattr(gallery_panel, "QMenu", RecordedMenu)
    panel._context_menu(panel.grid.visualRect(panel.model.index(0)).center())
    assert "Upscale…" in shown[0]

    session = FakeSession(panel.actions)
    dialogs: list[UpscaleDialog] = []

    def accept(dialog: UpscaleDialog) -> QDialog.DialogCode:
        dialogs.append(dialog)
        dialog.upscaler.setCurrentIndex(2)  # the 4× network: ×4 by default
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(UpscaleDialog, "exec", accept)
    panel.upscaleRequested.connect(lambda row: ask_and_upscale(session, row, panel))
    panel.upscale_action.trigger()
    assert dialogs and dialogs[0].source == panel.actions.entries([0])[0].path
    assert session.upscales == [(dialogs[0].source, "/upscalers/4x-Tiny.pth", 4)]


def test_the_viewer_has_upscale_too(qtbot, panel):
    panel.open_viewer(0)
    with qtbot.waitSignal(panel.upscaleRequested) as requested:
        panel.viewer.upscale_requested.emit()
    assert requested.args == [0]


def test_the_dialog_defaults_to_the_models_scale_and_disables_what_cannot_run(qtbot, panel):
    source = panel.actions.entries([0])[0].path
    dialog = UpscaleDialog(source, CHOICES)
    qtbot.addWidget(dialog)
    assert dialog.choice() == ("Lanczos", 2)
    assert dialog.result_size.text() == "24 × 16  →  48 × 32"
    dialog.upscaler.setCurrentIndex(2)
    assert dialog.choice() == ("/upscalers/4x-Tiny.pth", 4)
    assert "96 × 64" in dialog.result_size.text()
    dialog.factor.setCurrentIndex(0)
    assert dialog.choice() == ("/upscalers/4x-Tiny.pth", 2)
    assert not dialog.upscaler.model().item(3).isEnabled()
    assert "spandrel" in dialog.upscaler.model().item(3).toolTip()


def test_the_status_bar_progress_shows_an_upscale_and_cancels_it(qtbot, panel):
    from PySide6.QtCore import QObject, Signal

    from ldm_studio.ui.task_progress import TaskProgress

    class Signals(QObject):
        taskStarted = Signal(str, str)
        taskProgress = Signal(str, int, int, object)
        taskFinished = Signal(str, object)
        taskFailed = Signal(str, str)

    session = Signals()
    progress = TaskProgress(session)
    qtbot.addWidget(progress)
    assert progress.isHidden()
    session.taskStarted.emit(TASK_UPSCALE, "Upscaling a.png ×4…")
    assert not progress.isHidden() and progress.bar.format() == "Upscaling a.png ×4…"
    session.taskProgress.emit(TASK_UPSCALE, 3, 12, None)
    assert progress.bar.format() == "Upscale: tile 3/12" and progress.bar.value() == 3
    with qtbot.waitSignal(progress.cancelRequested):
        progress.cancel.click()
    session.taskFailed.emit(TASK_UPSCALE, "")
    assert progress.isHidden()


def test_no_gallery_row_opens_nothing(panel):
    assert not ask_and_upscale(FakeSession(panel.actions), 99)
    assert upscale_dialog.UpscaleDialog is UpscaleDialog


def test_the_viewer_shows_an_upscaled_images_own_size_and_the_size_it_was_made_at(qtbot, panel, tmp_path):
    from ldm_studio.gallery.upscaled import save_upscaled

    parent = panel.actions.store.root
    source = next(parent.rglob("*.png"))
    with Image.open(source) as image:
        image.load()
        target = save_upscaled(image.resize((48, 32)), image, source, "Lanczos", 2, source.parent)
    panel.model.add_saved(target)
    row = next(r for r in range(panel.model.rowCount()) if panel.model.entry(r).path == target)
    panel.open_viewer(row)
    assert panel.viewer.values["Size"].text() == "48 × 32 (made at 24 × 16)"
    panel.open_viewer(next(r for r in range(panel.model.rowCount()) if r != row))
    assert panel.viewer.values["Size"].text() == "24 × 16"
