"""The gallery tab: search and filters on top, the thumbnail grid, actions on the selection, a viewer.

Construct with the app's store, index and thumbnail cache; tell it about new images with
``add_saved(path)``; connect ``reuse_requested(metadata, mode)`` to the prompt panel.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path

from PySide6.QtCore import (
    QDate,
    QEvent,
    QItemSelectionModel,
    QObject,
    QSize,
    Qt,
    QThreadPool,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QSlider,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.gallery_model import GalleryModel
from ldm_studio.gallery.index import GalleryIndex, GalleryQuery, ReconcileReport
from ldm_studio.gallery.metadata import ImageMetadata, read_metadata
from ldm_studio.gallery.store import GalleryStore, write_atomic_exclusive
from ldm_studio.gallery.thumbnails import ThumbnailCache
from ldm_studio.gallery.trash import Trash, TrashBatch
from ldm_studio.ui.gallery_delegate import GalleryTileDelegate
from ldm_studio.ui.gallery_viewer import GalleryViewer
from ldm_studio.ui.style import ACCENT

log = logging.getLogger(__name__)

LAYOUT_BATCH = 1000
SEARCH_DELAY_MS = 120  # results while typing, without a query per keystroke
DATE_PRESETS = ("Any time", "Today", "Last 7 days", "Last 30 days", "This year", "Custom range…")
ALL_MODELS = "All models"

PANEL_STYLE = f"""
QWidget#galleryToolbar, QWidget#galleryFooter {{ background: #212328; }}
QWidget#galleryToolbar {{ border-bottom: 1px solid #2e3138; }}
QWidget#galleryFooter {{ border-top: 1px solid #2e3138; }}
QLineEdit#gallerySearch {{
    background: #17181c; border: 1px solid #363a44; border-radius: 14px; padding: 4px 12px; min-height: 20px;
}}
QLineEdit#gallerySearch:focus {{ border-color: {ACCENT}; }}
QListView#galleryGrid, QWidget#galleryEmpty {{ background: #16171a; border: none; }}
QToolButton#filterToggle {{
    background: #2b2e35; border: 1px solid #3a3e48; border-radius: 12px; padding: 3px 10px;
}}
QToolButton#filterToggle:checked {{ background: #4a3f1e; border-color: #f5c542; color: #ffe39a; }}
QToolButton#action {{ border: 1px solid transparent; border-radius: 4px; padding: 4px 9px; }}
QToolButton#action:hover {{ background: #30333b; border-color: #3a3e48; }}
QToolButton#action:disabled {{ color: #5c6068; }}
QToolButton#danger {{ border: 1px solid transparent; border-radius: 4px; padding: 4px 9px; color: #ff9b93; }}
QToolButton#danger:hover {{ background: #4a2a2a; }}
QToolButton#danger:disabled {{ color: #5c6068; }}
QWidget#undoBar {{ background: #2d3550; border-top: 1px solid #45507a; }}
QLabel#galleryEmptyText {{ color: #7d818a; font-size: 15px; }}
QWidget#viewerDetails {{ background: #1f2125; }}
"""


def day_start(day: date) -> float:
    return datetime.combine(day, time.min).timestamp()


def date_range(
    preset: str, first: date, last: date, today: date | None = None
) -> tuple[float | None, float | None]:
    """Epoch bounds [from, to) for a date preset; the custom range includes both of its days."""
    today = today or date.today()
    if preset == "Today":
        return day_start(today), None
    if preset == "Last 7 days":
        return day_start(today - timedelta(days=6)), None
    if preset == "Last 30 days":
        return day_start(today - timedelta(days=29)), None
    if preset == "This year":
        return day_start(date(today.year, 1, 1)), None
    if preset == "Custom range…":
        return day_start(min(first, last)), day_start(max(first, last) + timedelta(days=1))
    return None, None


class GalleryPanel(QWidget):
    reuse_requested = Signal(object, str)  # ImageMetadata, "all" | "prompt" | "seed"
    status_message = Signal(str)  # one sentence for the window's status bar

    SCAN_DELAY_MS = 800  # start-up reconcile waits for the first screen of thumbnails

    def __init__(
        self,
        store: GalleryStore,
        index: GalleryIndex,
        thumbnails: ThumbnailCache,
        parent: QWidget | None = None,
        *,
        trash: Trash | None = None,
        scan_on_start: bool = True,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("galleryPanel")
        self.setStyleSheet(PANEL_STYLE)
        self.store, self.index = store, index
        self.trash = trash or Trash()
        self.model = GalleryModel(index, thumbnails, self)
        self._last_batch: TrashBatch | None = None
        self._viewer_row = -1
        self._count_text = ""

        self._build_toolbar()
        self._build_grid()
        self.viewer = GalleryViewer()
        self._build_footer()
        self._build_undo_bar()
        self._build_actions()

        self.pages = QStackedWidget()
        self.pages.addWidget(self.grid_page)
        self.pages.addWidget(self.viewer)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.undo_bar)
        layout.addWidget(self.footer)

        self.viewer.back_requested.connect(self.close_viewer)
        self.viewer.step_requested.connect(self.step_viewer)
        self.viewer.reuse_requested.connect(lambda mode: self.reuse(mode, self._viewer_row))
        self.viewer.favourite_toggled.connect(self._viewer_favourite)
        self.viewer.copy_prompt_requested.connect(lambda: self.copy_prompt([self._viewer_row]))
        self.viewer.show_in_folder_requested.connect(lambda: self.show_in_folder([self._viewer_row]))
        self.model.results_changed.connect(self._results_changed)
        self.model.reconciled.connect(self._scan_finished)
        self.model.background_failed.connect(self.status_message)
        self.model.modelReset.connect(self._selection_changed)

        self.index.add_root(store.root)
        self._refresh_models()
        self.model.set_query(self.current_query())
        if scan_on_start:
            # After the first screen: the scan competes with the GUI thread for the interpreter.
            QTimer.singleShot(self.SCAN_DELAY_MS, self._start_scan)

    def _start_scan(self) -> None:
        QThreadPool.globalInstance().start(self.store.remove_stale_temp_files)
        self.model.reconcile_in_background()

    # -- building ---------------------------------------------------------------------------------

    def _build_toolbar(self) -> None:
        self.toolbar = QWidget()
        self.toolbar.setObjectName("galleryToolbar")
        self.search_box = QLineEdit()
        self.search_box.setObjectName("gallerySearch")
        self.search_box.setPlaceholderText("Search prompts…")
        self.search_box.setClearButtonEnabled(True)
        self.search_box.setMinimumWidth(160)
        self._search_timer = QTimer(self, singleShot=True, interval=SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.apply_filters)
        self.search_box.textChanged.connect(self._search_timer.start)
        self.search_box.returnPressed.connect(self.apply_filters)

        self.model_filter = QComboBox()
        self.model_filter.setMinimumWidth(110)
        self.model_filter.setToolTip("Show images made with one model")
        self.date_filter = QComboBox()
        self.date_filter.addItems(DATE_PRESETS)
        self.date_from = QDateEdit(QDate.currentDate().addDays(-7), calendarPopup=True)
        self.date_to = QDateEdit(QDate.currentDate(), calendarPopup=True)
        for edit in (self.date_from, self.date_to):
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setVisible(False)
            edit.dateChanged.connect(self.apply_filters)
        self.favourites_only = QToolButton(text="★  Favourites")
        self.favourites_only.setObjectName("filterToggle")
        self.favourites_only.setCheckable(True)
        self.sort_order = QComboBox()
        self.sort_order.addItems(["Newest first", "Oldest first"])
        for combo in (self.model_filter, self.date_filter, self.sort_order):
            combo.currentIndexChanged.connect(self.apply_filters)
        self.favourites_only.toggled.connect(self.apply_filters)
        self.date_filter.currentIndexChanged.connect(self._date_preset_changed)

        self.zoom = QSlider(Qt.Orientation.Horizontal)
        self.zoom.setRange(96, 256)
        self.zoom.setValue(168)
        self.zoom.setFixedWidth(80)
        self.zoom.setToolTip("Thumbnail size")
        self.zoom.valueChanged.connect(self._set_tile_size)

        more = QToolButton(text="⋯")
        more.setToolTip("More")
        more.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(more)
        menu.addAction("Import a folder of images…", self.import_folder_dialog)
        menu.addAction("Open the gallery folder", lambda: self._open_folder(self.store.root))
        menu.addSeparator()
        menu.addAction("Rebuild the index from the files", self.rebuild_index)
        more.setMenu(menu)

        row = QHBoxLayout(self.toolbar)
        row.setContentsMargins(12, 8, 12, 8)
        row.setSpacing(8)
        row.addWidget(self.search_box, 2)
        row.addWidget(self.model_filter)
        row.addWidget(self.date_filter)
        row.addWidget(self.date_from)
        row.addWidget(self.date_to)
        row.addWidget(self.favourites_only)
        row.addWidget(self.sort_order)
        row.addStretch(1)
        zoom_label = QLabel("Size")
        zoom_label.setObjectName("hint")
        row.addWidget(zoom_label)
        row.addWidget(self.zoom)
        row.addWidget(more)

    def _build_grid(self) -> None:
        self.grid = QListView()
        self.grid.setObjectName("galleryGrid")
        self.grid.setModel(self.model)
        self.delegate = GalleryTileDelegate(self.zoom.value(), self.grid)
        self.grid.setItemDelegate(self.delegate)
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setFlow(QListView.Flow.LeftToRight)
        self.grid.setWrapping(True)
        # Uniform sizes: the view never asks 50,000 items for their size, only what it paints.
        self.grid.setUniformItemSizes(True)
        # Batched layout: the first screen paints at once; the rest of a 50,000-item grid is laid out
        # over the next event-loop turns instead of freezing the window for half a second.
        self.grid.setLayoutMode(QListView.LayoutMode.Batched)
        self.grid.setBatchSize(LAYOUT_BATCH)
        self.grid.setSpacing(2)
        self.grid.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.grid.setSelectionRectVisible(True)
        self.grid.setDragEnabled(True)
        self.grid.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.grid.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.grid.verticalScrollBar().setSingleStep(24)
        self.grid.setMouseTracking(True)
        self.grid.setFrameShape(QFrame.Shape.NoFrame)
        self.grid.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        # Double-click and Return open the viewer; not ``activated``, which some desktops fire on a
        # single click and would make selecting impossible.
        self.grid.doubleClicked.connect(lambda index: self.open_viewer(index.row()))
        self.grid.selectionModel().selectionChanged.connect(self._selection_changed)
        self.grid.viewport().installEventFilter(self)
        self.grid.setGridSize(QSize(self.zoom.value(), self.zoom.value()))

        self.empty = QWidget()
        self.empty.setObjectName("galleryEmpty")
        self.empty_text = QLabel()
        self.empty_text.setObjectName("galleryEmptyText")
        self.empty_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        QVBoxLayout(self.empty).addWidget(self.empty_text)
        self.grid_page = QStackedWidget()
        self.grid_page.addWidget(self.grid)
        self.grid_page.addWidget(self.empty)

    def _build_footer(self) -> None:
        self.footer = QWidget()
        self.footer.setObjectName("galleryFooter")
        self.count_label = QLabel()
        self.count_label.setObjectName("hint")
        row = QHBoxLayout(self.footer)
        row.setContentsMargins(12, 4, 12, 4)
        row.setSpacing(4)
        row.addWidget(self.count_label)
        row.addStretch(1)
        self.footer_row = row

    def _build_undo_bar(self) -> None:
        self.undo_bar = QWidget()
        self.undo_bar.setObjectName("undoBar")
        self.undo_text = QLabel()
        self.undo_button = undo = QToolButton(text="Undo")
        undo.setObjectName("action")
        undo.clicked.connect(self.undo_delete)
        dismiss = QToolButton(text="✕")
        dismiss.setObjectName("action")
        dismiss.clicked.connect(lambda: self.undo_bar.setVisible(False))
        row = QHBoxLayout(self.undo_bar)
        row.setContentsMargins(12, 4, 12, 4)
        row.addWidget(self.undo_text)
        row.addStretch(1)
        row.addWidget(undo)
        row.addWidget(dismiss)
        self.undo_bar.setVisible(False)

    def _action(
        self, text: str, handler, shortcut: str | QKeySequence | None = None, tip: str = ""
    ) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(handler)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
            # Only while the grid has focus: Ctrl+C in the prompt box must stay a text copy.
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            self.grid.addAction(action)
        action.setToolTip(tip or text)
        return action

    def _build_actions(self) -> None:
        selected = self.selected_rows
        self.star_action = self._action("★ Star", lambda: self.set_favourite(selected(), True), "F")
        self.unstar_action = self._action(
            "☆ Unstar", lambda: self.set_favourite(selected(), False), "Shift+F"
        )
        self.reuse_menu = QMenu("Reuse", self)
        for mode, label in (("all", "All settings"), ("prompt", "Prompt only"), ("seed", "Seed only")):
            self.reuse_menu.addAction(label, lambda mode=mode: self.reuse(mode))
        self.copy_image_action = self._action("Copy image", lambda: self.copy_image(selected()), "Ctrl+C")
        self.copy_prompt_action = self._action(
            "Copy prompt", lambda: self.copy_prompt(selected()), "Ctrl+Shift+C"
        )
        self.show_folder_action = self._action("Show in folder", lambda: self.show_in_folder(selected()))
        self.export_action = self._action("Export…", self.export_dialog, tip="Copy the images to a folder")
        self.delete_action = self._action(
            "Delete", lambda: self.delete(selected()), QKeySequence.StandardKey.Delete
        )
        self.open_action = self._action("Open", lambda: self.open_viewer(self._first_selected()), "Return")

        self.selection_actions = [
            self.star_action,
            self.unstar_action,
            self.copy_image_action,
            self.copy_prompt_action,
            self.show_folder_action,
            self.export_action,
            self.delete_action,
            self.open_action,
        ]
        reuse_button = QToolButton(text="Reuse")
        reuse_button.setObjectName("action")
        reuse_button.setMenu(self.reuse_menu)
        reuse_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.reuse_button = reuse_button
        for action in (self.star_action, self.unstar_action):
            self._footer_button(action)
        self.footer_row.addWidget(reuse_button)
        for action in (
            self.copy_image_action,
            self.copy_prompt_action,
            self.show_folder_action,
            self.export_action,
        ):
            self._footer_button(action)
        self.footer_row.addSpacing(10)
        self._footer_button(self.delete_action, "danger")
        self._selection_changed()

    def _footer_button(self, action: QAction, name: str = "action") -> QToolButton:
        button = QToolButton()
        button.setDefaultAction(action)
        button.setObjectName(name)
        self.footer_row.addWidget(button)
        return button

    # -- queries ----------------------------------------------------------------------------------

    def current_query(self) -> GalleryQuery:
        model = self.model_filter.currentText()
        first, last = self.date_from.date().toPython(), self.date_to.date().toPython()
        date_from, date_to = date_range(self.date_filter.currentText(), first, last)
        return GalleryQuery(
            text=self.search_box.text(),
            model=None if model in ("", ALL_MODELS) else model,
            date_from=date_from,
            date_to=date_to,
            favourites_only=self.favourites_only.isChecked(),
            newest_first=self.sort_order.currentIndex() == 0,
        )

    def apply_filters(self) -> None:
        self._search_timer.stop()
        query = self.current_query()
        if query != self.model.query:
            self.model.set_query(query)

    def _date_preset_changed(self) -> None:
        custom = self.date_filter.currentText() == "Custom range…"
        self.date_from.setVisible(custom)
        self.date_to.setVisible(custom)

    def _refresh_models(self) -> None:
        current = self.model_filter.currentText()
        self.model_filter.blockSignals(True)
        self.model_filter.clear()
        self.model_filter.addItem(ALL_MODELS)
        self.model_filter.addItems(self.index.models())
        found = self.model_filter.findText(current)
        self.model_filter.setCurrentIndex(max(found, 0))
        self.model_filter.blockSignals(False)

    def _results_changed(self, count: int) -> None:
        total = self.index.count()
        self._count_text = f"{count:,} of {total:,} images" if count != total else f"{count:,} images"
        if count == 0:
            self.empty_text.setText(
                "Nothing matches these filters." if total else "Generated images will appear here."
            )
        self.grid_page.setCurrentWidget(self.grid if count else self.empty)
        self._selection_changed()

    def _scan_finished(self, report: ReconcileReport) -> None:
        self._refresh_models()
        self._results_changed(self.model.rowCount())
        if report.changed:
            self.status_message.emit(
                f"Gallery updated: {report.added} new, {report.updated} changed, {report.removed} gone."
            )

    def _set_tile_size(self, size: int) -> None:
        self._fit_tiles()

    def _fit_tiles(self) -> None:
        """Stretch tiles a little so whole columns fill the width, with no ragged gap on the right."""
        width = self.grid.viewport().width()
        wanted = self.zoom.value()
        columns = max(1, width // wanted)
        tile = max(wanted, width // columns) if width >= wanted else wanted
        if tile != self.delegate.tile or self.grid.gridSize().width() != tile:
            self.delegate.tile = tile
            self.grid.setGridSize(QSize(tile, tile))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt override)
        if watched is self.grid.viewport() and event.type() == QEvent.Type.Resize:
            self._fit_tiles()
        return super().eventFilter(watched, event)

    # -- selection --------------------------------------------------------------------------------

    def selected_rows(self) -> list[int]:
        return sorted(index.row() for index in self.grid.selectionModel().selectedIndexes())

    def _first_selected(self) -> int:
        rows = self.selected_rows()
        current = self.grid.currentIndex()
        if current.isValid() and current.row() in rows:
            return current.row()
        return rows[0] if rows else -1

    def _selection_changed(self, *args) -> None:
        rows = self.selected_rows()
        for action in self.selection_actions:
            action.setEnabled(bool(rows))
        self.reuse_button.setEnabled(len(rows) >= 1)
        text = self._count_text
        self.count_label.setText(f"{text} · {len(rows):,} selected" if rows else text)

    def select_rows(self, rows: list[int]) -> None:
        selection = self.grid.selectionModel()
        selection.clearSelection()
        for row in rows:
            selection.select(self.model.index(row), QItemSelectionModel.SelectionFlag.Select)
        if rows:
            selection.setCurrentIndex(self.model.index(rows[0]), QItemSelectionModel.SelectionFlag.NoUpdate)

    def _context_menu(self, position) -> None:
        index = self.grid.indexAt(position)
        if index.isValid() and index.row() not in self.selected_rows():
            self.select_rows([index.row()])
        if not self.selected_rows():
            return
        menu = QMenu(self)
        menu.addAction(self.open_action)
        menu.addMenu(self.reuse_menu)
        menu.addSeparator()
        for action in (self.star_action, self.unstar_action):
            menu.addAction(action)
        menu.addSeparator()
        for action in (
            self.copy_image_action,
            self.copy_prompt_action,
            self.show_folder_action,
            self.export_action,
        ):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.delete_action)
        menu.exec(self.grid.viewport().mapToGlobal(position))

    # -- actions ----------------------------------------------------------------------------------

    def add_saved(self, path: str | Path) -> None:
        """A new image was saved: index it and show it now (if it matches the current filters)."""
        entry = self.model.add_saved(path)
        if entry is not None and entry.model and self.model_filter.findText(entry.model) < 0:
            self._refresh_models()

    def metadata_for(self, row: int) -> ImageMetadata | None:
        entry = self.model.entry(row) if 0 <= row < self.model.rowCount() else None
        if entry is None:
            return None
        try:
            return read_metadata(entry.path)
        except ValueError as error:
            self.status_message.emit(str(error))
            return None

    def reuse(self, mode: str, row: int | None = None) -> None:
        metadata = self.metadata_for(self._first_selected() if row is None else row)
        if metadata is not None:
            self.reuse_requested.emit(metadata, mode)

    def set_favourite(self, rows: list[int], favourite: bool) -> None:
        if rows:
            self.model.set_favourite(rows, favourite)

    def copy_image(self, rows: list[int]) -> None:
        entries = self.model.entries(rows[:1])
        if entries:
            image = QImage(str(entries[0].path))
            if image.isNull():
                self.status_message.emit(f"Cannot read {entries[0].path.name}.")
                return
            QGuiApplication.clipboard().setImage(image)
            self.status_message.emit("Image copied.")

    def copy_prompt(self, rows: list[int]) -> None:
        prompts = [entry.prompt for entry in self.model.entries(rows) if entry.prompt]
        if prompts:
            QGuiApplication.clipboard().setText("\n\n".join(prompts))
            self.status_message.emit(
                "Prompt copied." if len(prompts) == 1 else f"{len(prompts)} prompts copied."
            )

    def show_in_folder(self, rows: list[int]) -> None:
        entries = self.model.entries(rows[:1])
        if entries:
            self._open_folder(entries[0].path.parent)

    def _open_folder(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export images to a folder")
        if folder:
            self.export_to(Path(folder), self.selected_rows())

    def export_to(self, folder: Path, rows: list[int]) -> list[Path]:
        """Copy the images (metadata and all) into ``folder``, never overwriting anything there."""
        written = []
        for entry in self.model.entries(rows):
            try:
                written.append(write_atomic_exclusive(entry.path.read_bytes(), folder / entry.path.name))
            except OSError as error:
                self.status_message.emit(f"Could not export {entry.path.name}: {error.strerror or error}.")
                return written
        self.status_message.emit(f"Exported {len(written)} image{'s' * (len(written) != 1)} to {folder}.")
        return written

    def delete(self, rows: list[int]) -> TrashBatch | None:
        entries = self.model.entries(rows)
        if not entries:
            return None
        batch = self.trash.delete([entry.path for entry in entries])
        deleted = set(batch.deleted)
        self.index.remove_paths(deleted)
        self.model.remove_ids([entry.id for entry in entries if entry.path in deleted])
        if batch.failed:
            path, reason = batch.failed[0]
            self.status_message.emit(f"Could not delete {path.name}: {reason}.")
        count = len(batch.moved)
        where = "the system trash" if batch.system_trash else "the LDM Studio trash"
        self.undo_text.setText(f"Moved {count} image{'s' * (count != 1)} to {where}.")
        self._last_batch = batch if batch.can_undo else None
        self.undo_button.setVisible(batch.can_undo)
        self.undo_bar.setVisible(count > 0)
        return batch

    def undo_delete(self) -> None:
        batch, self._last_batch = self._last_batch, None
        self.undo_bar.setVisible(False)
        if batch is None:
            return
        restored = self.trash.restore(batch)
        for path in restored:
            self.index.add(path)
        self.model.refresh()
        self.status_message.emit(f"Restored {len(restored)} image{'s' * (len(restored) != 1)}.")

    def import_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of images")
        if folder:
            self.status_message.emit(f"Importing {folder}…")
            self.model.reconcile_in_background([Path(folder)])

    def rebuild_index(self) -> None:
        self.status_message.emit("Rebuilding the gallery index…")
        self.model.rebuild_in_background()

    # -- viewer -----------------------------------------------------------------------------------

    def open_viewer(self, row: int) -> None:
        if not 0 <= row < self.model.rowCount():
            return
        self._viewer_row = row
        entry = self.model.entry(row)
        if entry is None:
            return
        self.viewer.show_image(entry, self.metadata_for(row), row, self.model.rowCount())
        self.pages.setCurrentWidget(self.viewer)
        self.viewer.setFocus()
        self.select_rows([row])
        self.grid.scrollTo(self.model.index(row))

    def step_viewer(self, delta: int) -> None:
        row = self._viewer_row + delta
        if 0 <= row < self.model.rowCount():
            self.open_viewer(row)

    def close_viewer(self) -> None:
        self.pages.setCurrentWidget(self.grid_page)
        self.grid.setFocus()

    def _viewer_favourite(self, favourite: bool) -> None:
        if 0 <= self._viewer_row < self.model.rowCount():
            self.model.set_favourite([self._viewer_row], favourite)

    def viewer_row(self) -> int:
        return self._viewer_row if self.pages.currentWidget() is self.viewer else -1

    # -- lifetime ---------------------------------------------------------------------------------

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Wait for background scans and thumbnails, then close the index (call when the app quits)."""
        self.model.wait_for_background(timeout_ms)
        self.model.loader.cancel_all()
        self.model.loader.wait(timeout_ms)
        self.index.close()
