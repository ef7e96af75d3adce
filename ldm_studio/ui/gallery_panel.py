"""The gallery tab: search and filters on top, the thumbnail grid, actions on the selection, a viewer.

Construct with the app's ``GalleryActions``: it holds the list model and does the work (delete with
undo, export, import, reuse); this panel shows the grid and sends it the selected rows.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QEvent, QItemSelectionModel, QObject, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QImage, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.gallery_actions import DeleteReport, GalleryActions
from ldm_studio.gallery.index import ReconcileReport
from ldm_studio.ui.gallery_delegate import GalleryTileDelegate
from ldm_studio.ui.gallery_toolbar import GalleryToolbar
from ldm_studio.ui.gallery_viewer import GalleryViewer
from ldm_studio.ui.style import GALLERY_STYLE
from ldm_studio.ui.undo_bar import UndoBar

log = logging.getLogger(__name__)

LAYOUT_BATCH = 1000


class GalleryPanel(QWidget):
    SCAN_DELAY_MS = 800  # start-up reconcile waits for the first screen of thumbnails
    upscaleRequested = Signal(int)  # a row: the window asks how (ui.upscale_dialog)

    def __init__(
        self, actions: GalleryActions, parent: QWidget | None = None, *, scan_on_start: bool = True
    ) -> None:
        super().__init__(parent)
        self.setObjectName("galleryPanel")
        self.setStyleSheet(GALLERY_STYLE)
        self.actions = actions
        self.model = actions.model
        self._viewer_row = -1
        self._count_text = ""

        self.toolbar = GalleryToolbar()
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
        self._bind()

        self.toolbar.set_models(actions.model_names())
        self.model.set_query(self.toolbar.current_query())
        if scan_on_start:
            # After the first screen: the scan competes with the GUI thread for the interpreter.
            QTimer.singleShot(self.SCAN_DELAY_MS, actions.start_background_scan)

    def _bind(self) -> None:
        toolbar, actions = self.toolbar, self.actions
        toolbar.filtersChanged.connect(self.apply_filters)
        toolbar.zoomChanged.connect(lambda _size: self._fit_tiles())
        toolbar.importRequested.connect(self.import_folder_dialog)
        toolbar.openFolderRequested.connect(lambda: self._open_folder(actions.root))
        toolbar.rebuildRequested.connect(actions.rebuild_index)
        self.viewer.back_requested.connect(self.close_viewer)
        self.viewer.step_requested.connect(self.step_viewer)
        self.viewer.reuse_requested.connect(lambda mode: actions.reuse(self._viewer_row, mode))
        self.viewer.favourite_toggled.connect(lambda on: actions.set_favourite([self._viewer_row], on))
        self.viewer.copy_prompt_requested.connect(lambda: self.copy_prompt([self._viewer_row]))
        self.viewer.show_in_folder_requested.connect(lambda: self.show_in_folder([self._viewer_row]))
        self.viewer.upscale_requested.connect(lambda: self.upscaleRequested.emit(self._viewer_row))
        self.model.results_changed.connect(self._results_changed)
        self.model.reconciled.connect(self._scan_finished)
        self.model.modelReset.connect(self._selection_changed)
        actions.deleted.connect(self._show_undo)
        actions.undoDone.connect(lambda _count: self.undo_bar.setVisible(False))
        actions.modelsChanged.connect(lambda: self.toolbar.set_models(actions.model_names()))

    # -- building ---------------------------------------------------------------------------------

    def _build_grid(self) -> None:
        self.grid = QListView()
        self.grid.setObjectName("galleryGrid")
        self.grid.setModel(self.model)
        self.delegate = GalleryTileDelegate(self.toolbar.zoom.value(), self.grid)
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
        self.grid.setGridSize(QSize(self.toolbar.zoom.value(), self.toolbar.zoom.value()))

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
        self.undo_bar = UndoBar()
        self.undo_bar.undoRequested.connect(self.actions.undo_delete)
        self.undo_bar.dismissed.connect(self.actions.forget_undo)

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
        favourite = self.actions.set_favourite
        self.star_action = self._action("★ Star", lambda: favourite(selected(), True), "F")
        self.unstar_action = self._action("☆ Unstar", lambda: favourite(selected(), False), "Shift+F")
        self.reuse_menu = QMenu("Reuse", self)
        for mode, label in (("all", "All settings"), ("prompt", "Prompt only"), ("seed", "Seed only")):
            self.reuse_menu.addAction(
                label, lambda mode=mode: self.actions.reuse(self._first_selected(), mode)
            )
        self.copy_image_action = self._action("Copy image", lambda: self.copy_image(selected()), "Ctrl+C")
        self.copy_prompt_action = self._action(
            "Copy prompt", lambda: self.copy_prompt(selected()), "Ctrl+Shift+C"
        )
        self.show_folder_action = self._action("Show in folder", lambda: self.show_in_folder(selected()))
        self.export_action = self._action("Export…", self.export_dialog, tip="Copy the images to a folder")
        self.delete_action = self._action(
            "Delete", lambda: self.actions.delete(selected()), QKeySequence.StandardKey.Delete
        )
        self.open_action = self._action("Open", lambda: self.open_viewer(self._first_selected()), "Return")
        self.upscale_action = self._action(
            "Upscale…", lambda: self.upscaleRequested.emit(self._first_selected())
        )

        self.selection_actions = [
            self.star_action,
            self.unstar_action,
            self.copy_image_action,
            self.copy_prompt_action,
            self.show_folder_action,
            self.export_action,
            self.delete_action,
            self.open_action,
            self.upscale_action,
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

    def apply_filters(self) -> None:
        query = self.toolbar.current_query()
        if query != self.model.query:
            self.model.set_query(query)

    def _results_changed(self, count: int) -> None:
        total = self.actions.total()
        self._count_text = f"{count:,} of {total:,} images" if count != total else f"{count:,} images"
        if count == 0:
            self.empty_text.setText(
                "Nothing matches these filters." if total else "Generated images will appear here."
            )
        self.grid_page.setCurrentWidget(self.grid if count else self.empty)
        self._selection_changed()

    def _scan_finished(self, report: ReconcileReport) -> None:
        self.toolbar.set_models(self.actions.model_names())
        self._results_changed(self.model.rowCount())
        if report.changed:
            self.actions.status.emit(
                f"Gallery updated: {report.added} new, {report.updated} changed, {report.removed} gone."
            )

    def _fit_tiles(self) -> None:
        """Stretch tiles a little so whole columns fill the width, with no ragged gap on the right."""
        width = self.grid.viewport().width()
        wanted = self.toolbar.zoom.value()
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
        menu.addAction(self.upscale_action)
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

    # -- actions that need the clipboard, the desktop or a dialog -----------------------------------

    def copy_image(self, rows: list[int]) -> None:
        entries = self.actions.entries(rows[:1])
        if entries:
            image = QImage(str(entries[0].path))
            if image.isNull():
                self.actions.status.emit(f"Cannot read {entries[0].path.name}.")
                return
            QGuiApplication.clipboard().setImage(image)
            self.actions.status.emit("Image copied.")

    def copy_prompt(self, rows: list[int]) -> None:
        prompts = [entry.prompt for entry in self.actions.entries(rows) if entry.prompt]
        if prompts:
            QGuiApplication.clipboard().setText("\n\n".join(prompts))
            self.actions.status.emit(
                "Prompt copied." if len(prompts) == 1 else f"{len(prompts)} prompts copied."
            )

    def show_in_folder(self, rows: list[int]) -> None:
        entries = self.actions.entries(rows[:1])
        if entries:
            self._open_folder(entries[0].path.parent)

    def _open_folder(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def export_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export images to a folder")
        if folder:
            self.actions.export_to(Path(folder), self.selected_rows())

    def import_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of images")
        if folder:
            self.actions.import_folder(Path(folder))

    def _show_undo(self, report: DeleteReport) -> None:
        self.undo_bar.show_message(report.text, report.moved > 0, report.can_undo)

    # -- viewer -----------------------------------------------------------------------------------

    def open_viewer(self, row: int) -> None:
        if not 0 <= row < self.model.rowCount():
            return
        self._viewer_row = row
        entry = self.model.entry(row)
        if entry is None:
            return
        self.viewer.show_image(entry, self.actions.metadata_for(row), row, self.model.rowCount())
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

    def viewer_row(self) -> int:
        return self._viewer_row if self.pages.currentWidget() is self.viewer else -1
