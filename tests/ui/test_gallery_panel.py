"""The gallery panel with qtbot: search while typing, filters, reuse, star, delete + undo, viewer."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from ldm_studio.app.gallery_actions import GalleryActions
from ldm_studio.app.gallery_model import EntryRole
from ldm_studio.app.jobs import SavedImage
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.index import GalleryIndex, GalleryQuery
from ldm_studio.gallery.metadata import ImageMetadata, read_metadata
from ldm_studio.gallery.store import GalleryStore
from ldm_studio.gallery.thumbnails import ThumbnailCache
from ldm_studio.gallery.trash import Trash
from ldm_studio.ui.gallery_panel import GalleryPanel
from ldm_studio.ui.gallery_toolbar import date_range

IMAGES = [
    ("a red fox in the snow", 11, "fox-model"),
    ("a blue whale, deep ocean", 22, "sea-model"),
    ("red roses, oil painting", 33, "fox-model"),
    ("a lighthouse at dusk", 44, "sea-model"),
]


@pytest.fixture
def panel(tmp_path, qtbot, monkeypatch):
    monkeypatch.setattr(GalleryPanel, "SCAN_DELAY_MS", 0)
    store = GalleryStore(tmp_path / "gallery")
    index = GalleryIndex()
    for prompt, seed, model in IMAGES:
        request = GenerationRequest(prompt=prompt, negative_prompt="blurry", seed=seed, width=16, height=16)
        path = store.save(Image.new("RGB", (16, 16)), request, model_name=model, model_hash="abc")
        index.add(path)
    actions = GalleryActions(
        store, index, ThumbnailCache(), trash=Trash(tmp_path / "trash", use_system_trash=False)
    )
    panel = GalleryPanel(actions)
    scanned = qtbot.waitSignal(panel.model.reconciled, timeout=10_000)  # the start-up scan
    qtbot.addWidget(panel)
    panel.resize(1000, 700)
    panel.show()
    scanned.wait()
    yield panel
    actions.shutdown()


def shown_prompts(panel: GalleryPanel) -> list[str]:
    model = panel.model
    return [model.data(model.index(row), EntryRole).prompt for row in range(model.rowCount())]


def row_of(panel: GalleryPanel, prompt: str) -> int:
    return shown_prompts(panel).index(prompt)


def test_typing_in_search_updates_results_while_typing(panel, qtbot):
    assert len(shown_prompts(panel)) == 4
    qtbot.keyClicks(panel.toolbar.search_box, "re")
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2)
    assert sorted(shown_prompts(panel)) == ["a red fox in the snow", "red roses, oil painting"]
    qtbot.keyClicks(panel.toolbar.search_box, "d ro")
    qtbot.waitUntil(lambda: shown_prompts(panel) == ["red roses, oil painting"])
    assert panel.count_label.text().startswith("1 of 4 images")
    panel.toolbar.search_box.clear()
    qtbot.waitUntil(lambda: panel.model.rowCount() == 4)


def test_model_favourites_and_sort_filters(panel, qtbot):
    assert [panel.toolbar.model_filter.itemText(i) for i in range(panel.toolbar.model_filter.count())] == [
        "All models",
        "fox-model",
        "sea-model",
    ]
    panel.toolbar.model_filter.setCurrentText("sea-model")
    assert sorted(shown_prompts(panel)) == ["a blue whale, deep ocean", "a lighthouse at dusk"]
    panel.toolbar.model_filter.setCurrentText("All models")
    assert shown_prompts(panel)[0] == "a lighthouse at dusk"  # newest first
    panel.toolbar.sort_order.setCurrentIndex(1)
    assert shown_prompts(panel)[0] == "a red fox in the snow"

    panel.select_rows([row_of(panel, "a blue whale, deep ocean")])
    panel.star_action.trigger()
    panel.toolbar.favourites_only.setChecked(True)
    assert shown_prompts(panel) == ["a blue whale, deep ocean"]
    panel.toolbar.favourites_only.setChecked(False)
    panel.toolbar.date_filter.setCurrentText("Today")
    assert len(shown_prompts(panel)) == 4
    panel.toolbar.date_filter.setCurrentText("Custom range…")
    assert panel.toolbar.date_from.isVisibleTo(panel)
    panel.toolbar.date_from.setDate(panel.toolbar.date_from.date().addYears(-3))
    panel.toolbar.date_to.setDate(panel.toolbar.date_from.date().addDays(1))
    assert shown_prompts(panel) == []
    assert panel.grid_page.currentWidget() is panel.empty


def test_date_presets():
    from datetime import date

    today = date(2024, 3, 10)
    start, end = date_range("Last 7 days", today, today, today)
    assert end is None and date.fromtimestamp(start) == date(2024, 3, 4)
    start, end = date_range("Custom range…", date(2024, 1, 5), date(2024, 1, 2), today)
    assert (date.fromtimestamp(start), date.fromtimestamp(end)) == (date(2024, 1, 2), date(2024, 1, 6))
    assert date_range("Any time", today, today, today) == (None, None)


@pytest.mark.parametrize("mode", ["all", "prompt", "seed"])
def test_reuse_emits_the_image_metadata(panel, qtbot, mode):
    panel.select_rows([row_of(panel, "a blue whale, deep ocean")])
    with qtbot.waitSignal(panel.actions.reuseRequested) as signal:
        next(a for a in panel.reuse_menu.actions() if a.text().lower().startswith(mode[:3])).trigger()
    metadata, emitted_mode = signal.args
    assert emitted_mode == mode
    assert isinstance(metadata, ImageMetadata)
    assert (metadata.prompt, metadata.seed, metadata.negative_prompt) == (
        "a blue whale, deep ocean",
        22,
        "blurry",
    )
    base = GenerationRequest(prompt="typed", seed=1, steps=50)
    reused = metadata.reuse(base, emitted_mode)
    expected = {"all": ("a blue whale, deep ocean", 22, 20), "prompt": ("a blue whale, deep ocean", 1, 50)}
    assert (reused.prompt, reused.seed, reused.steps) == expected.get(mode, ("typed", 22, 50))


def test_delete_moves_to_app_trash_and_undo_restores(panel, qtbot):
    row = row_of(panel, "red roses, oil painting")
    path = panel.model.data(panel.model.index(row), EntryRole).path
    panel.select_rows([row])
    panel.delete_action.trigger()
    assert not path.exists()
    assert "red roses, oil painting" not in shown_prompts(panel)
    assert panel.actions.index.count() == 3
    assert panel.undo_bar.isVisible() and "trash" in panel.undo_bar.text.text()
    panel.undo_bar.undo_button.click()
    assert not panel.undo_bar.isVisible()
    assert path.exists() and read_metadata(path).prompt == "red roses, oil painting"
    assert "red roses, oil painting" in shown_prompts(panel)
    assert panel.actions.index.count() == 4


def test_copy_prompt_and_export(panel, tmp_path):
    rows = [row_of(panel, "a lighthouse at dusk"), row_of(panel, "a red fox in the snow")]
    panel.select_rows(rows)
    panel.copy_prompt_action.trigger()
    assert QGuiApplication.clipboard().text() == "a lighthouse at dusk\n\na red fox in the snow"
    target = tmp_path / "export"
    target.mkdir()
    written = panel.actions.export_to(target, rows)
    assert [read_metadata(p).prompt for p in written] == ["a lighthouse at dusk", "a red fox in the snow"]
    again = panel.actions.export_to(target, rows[:1])
    assert again[0] != written[0] and again[0].exists()  # never overwrites


def test_viewer_arrow_keys_walk_the_results_and_star(panel, qtbot):
    panel.toolbar.search_box.setText("a")
    panel.apply_filters()
    prompts = shown_prompts(panel)
    panel.open_viewer(0)
    assert panel.viewer_row() == 0
    assert panel.viewer.prompt.text() == prompts[0]
    qtbot.keyClick(panel.viewer, Qt.Key.Key_Right)
    assert panel.viewer_row() == 1 and panel.viewer.prompt.text() == prompts[1]
    qtbot.keyClick(panel.viewer, Qt.Key.Key_Left)
    qtbot.keyClick(panel.viewer, Qt.Key.Key_Left)  # stays on the first
    assert panel.viewer_row() == 0
    assert panel.viewer.values["Seed"].text() == str(panel.model.data(panel.model.index(0), EntryRole).seed)
    panel.viewer.star.click()
    assert panel.actions.index.search_ids(GalleryQuery(favourites_only=True)) == [panel.model.id_at(0)]
    with qtbot.waitSignal(panel.actions.reuseRequested) as signal:
        panel.viewer.reuse_requested.emit("seed")
    assert signal.args[1] == "seed" and signal.args[0].prompt == prompts[0]
    qtbot.keyClick(panel.viewer, Qt.Key.Key_Escape)
    assert panel.viewer_row() == -1


def test_add_saved_shows_new_image_and_new_model(panel, qtbot):
    request = GenerationRequest(prompt="a brand new castle", seed=5, width=16, height=16)
    path = panel.actions.store.save(
        Image.new("RGB", (16, 16)), request, model_name="castle-model", model_hash="h"
    )
    panel.actions.add_saved([SavedImage(path, read_metadata(path))])
    assert shown_prompts(panel)[0] == "a brand new castle"
    assert panel.toolbar.model_filter.findText("castle-model") > 0
    assert panel.count_label.text().startswith("5 images")
