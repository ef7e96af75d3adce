"""The gallery as a Qt list model: every match counted, only what is painted loaded.

A search fetches just the ordered ids of the matches (a few ms at 50,000 images). Row details come
from the index a page at a time when the view first paints a row, and thumbnails are asked of the
background loader only when the view paints them — so opening and scrolling stay flat in the size
of the gallery.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    Qt,
    QThreadPool,
    QUrl,
    Signal,
)
from PySide6.QtGui import QImage, QPixmap

from ldm_studio.app.gallery_thumbnails import ThumbnailLoader
from ldm_studio.gallery.index import GalleryEntry, GalleryIndex, GalleryQuery, ReconcileReport
from ldm_studio.gallery.metadata import ImageMetadata
from ldm_studio.gallery.thumbnails import ThumbnailCache

PAGE = 200
MAX_CACHED_ENTRIES = 20_000
MAX_CACHED_PIXMAPS = 600

EntryRole = Qt.ItemDataRole.UserRole + 1
PathRole = Qt.ItemDataRole.UserRole + 2
FavouriteRole = Qt.ItemDataRole.UserRole + 3
ThumbnailStateRole = Qt.ItemDataRole.UserRole + 4  # "loading", "ready" or "failed"

AnyIndex = QModelIndex | QPersistentModelIndex


class _Reconcile(QRunnable):
    def __init__(self, model: GalleryModel, folders: list[Path] | None, rebuild: bool = False) -> None:
        super().__init__()
        self.model, self.folders, self.rebuild = model, folders, rebuild

    def run(self) -> None:
        index = self.model.index_db
        try:
            if self.rebuild:
                report = index.rebuild()
            elif self.folders is None:
                report = index.reconcile()
            else:
                report = ReconcileReport()
                for folder in self.folders:
                    report = report + index.import_folder(folder)
        except Exception as error:  # reported to the user as a sentence, never swallowed
            self.model.background_failed.emit(f"Could not scan the gallery folders: {error}")
        else:
            self.model._reconciled.emit(report)


class GalleryModel(QAbstractListModel):
    results_changed = Signal(int)  # number of matches, after every new query
    reconciled = Signal(object)  # ReconcileReport, after a background scan
    background_failed = Signal(str)
    _reconciled = Signal(object)

    def __init__(
        self, index: GalleryIndex, thumbnails: ThumbnailCache, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.index_db = index
        self.loader = ThumbnailLoader(thumbnails, parent=self)
        self.loader.loaded.connect(self._thumbnail_loaded)
        self.loader.failed.connect(self._thumbnail_failed)
        self._reconciled.connect(self._after_reconcile)
        self._scans = QThreadPool(self)
        self._scans.setMaxThreadCount(1)
        self.query = GalleryQuery()
        self._ids: list[int] = []
        self._rows: dict[int, int] = {}  # id -> row
        self._entries: dict[int, GalleryEntry] = {}
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._failed: set[str] = set()
        self._path_ids: dict[str, int] = {}

    # -- queries -----------------------------------------------------------------------------------

    def set_query(self, query: GalleryQuery) -> None:
        self.query = query
        self.refresh()

    def refresh(self) -> None:
        """Run the current query again (after a scan, an import, a delete from elsewhere)."""
        ids = self.index_db.search_ids(self.query)
        self.loader.cancel_all()
        self.beginResetModel()
        self._ids = ids
        self._rows = {image_id: row for row, image_id in enumerate(ids)}
        self._entries.clear()
        self._path_ids.clear()
        self.endResetModel()
        self.results_changed.emit(len(ids))

    def reconcile_in_background(self, folders: list[Path] | None = None) -> None:
        """Scan the roots (or import ``folders``) on a worker; ``reconciled`` says when it is done."""
        self._scans.start(_Reconcile(self, folders))

    def rebuild_in_background(self) -> None:
        """Rebuild the index from the files alone on a worker (favourites are kept)."""
        self._scans.start(_Reconcile(self, None, rebuild=True))

    def wait_for_background(self, msecs: int = -1) -> bool:
        return self._scans.waitForDone(msecs)

    def _after_reconcile(self, report: ReconcileReport) -> None:
        if report.changed:
            self.refresh()
        self.reconciled.emit(report)

    # -- Qt model API ------------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 (Qt's own default)
        return 0 if parent.isValid() else len(self._ids)

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else base

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._ids):
            return None
        entry = self.entry(index.row())
        if entry is None:
            return None
        if role == EntryRole:
            return entry
        if role == PathRole:
            return str(entry.path)
        if role == FavouriteRole:
            return entry.favourite
        if role == Qt.ItemDataRole.DecorationRole:
            return self._pixmap(str(entry.path))
        if role == ThumbnailStateRole:
            key = str(entry.path)
            return "ready" if key in self._pixmaps else "failed" if key in self._failed else "loading"
        if role == Qt.ItemDataRole.ToolTipRole:
            prompt = entry.prompt if len(entry.prompt) < 300 else entry.prompt[:300] + "…"
            details = " · ".join(
                part for part in (entry.model, f"seed {entry.seed}" if entry.seed is not None else "") if part
            )
            return f"{prompt or entry.path.name}\n{details}".strip()
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return entry.prompt or entry.path.name
        return None

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: list[QModelIndex]) -> QMimeData:
        """Dragging images out of the gallery hands their files to the other application."""
        mime = QMimeData()
        paths = [self.data(index, PathRole) for index in indexes]
        mime.setUrls([QUrl.fromLocalFile(path) for path in paths if path])
        return mime

    # -- rows --------------------------------------------------------------------------------------

    def id_at(self, row: int) -> int:
        return self._ids[row]

    def row_of(self, image_id: int) -> int | None:
        return self._rows.get(image_id)

    def entry(self, row: int) -> GalleryEntry | None:
        image_id = self._ids[row]
        entry = self._entries.get(image_id)
        if entry is None:
            if len(self._entries) > MAX_CACHED_ENTRIES:
                self._entries.clear()
                self._path_ids.clear()
            start = row - row % PAGE
            page = self.index_db.entries(self._ids[start : start + PAGE])
            self._entries.update(page)
            self._path_ids.update({str(e.path): e.id for e in page.values()})
            entry = self._entries.get(image_id)
        return entry

    def entries(self, rows: list[int]) -> list[GalleryEntry]:
        return [entry for row in rows if (entry := self.entry(row)) is not None]

    def add_saved(self, path: str | Path, metadata: ImageMetadata | None = None) -> GalleryEntry | None:
        """Index a just-saved image and show it at once when it matches the current view.

        With ``metadata`` (what the saver wrote) the file is not read again.
        """
        entry = self.index_db.add(path) if metadata is None else self.index_db.add_known(path, metadata)
        if entry is None or entry.id in self._rows:
            return entry
        if not self.index_db.search_ids_within([entry.id], self.query):
            return entry
        # A new image is the newest: first when sorting newest first, else last.
        row = 0 if self.query.newest_first else len(self._ids)
        self.beginInsertRows(QModelIndex(), row, row)
        self._ids.insert(row, entry.id)
        self._rows = {image_id: number for number, image_id in enumerate(self._ids)}
        self._entries[entry.id] = entry
        self._path_ids[str(entry.path)] = entry.id
        self.endInsertRows()
        self.results_changed.emit(len(self._ids))
        return entry

    def set_favourite(self, rows: list[int], favourite: bool) -> None:
        ids = [self._ids[row] for row in rows]
        self.index_db.set_favourite(ids, favourite)
        for row, image_id in zip(rows, ids, strict=True):
            self._entries.pop(image_id, None)
            model_index = self.index(row)
            self.dataChanged.emit(model_index, model_index, [FavouriteRole, EntryRole])
        if self.query.favourites_only and not favourite:
            self.remove_ids(ids)

    def remove_ids(self, ids: list[int]) -> None:
        """Drop these images from the view (deleted, or no longer matching)."""
        doomed = sorted((self._rows[i] for i in ids if i in self._rows), reverse=True)
        for row in doomed:
            self.beginRemoveRows(QModelIndex(), row, row)
            image_id = self._ids.pop(row)
            entry = self._entries.pop(image_id, None)
            if entry is not None:
                self._pixmaps.pop(str(entry.path), None)
            self.endRemoveRows()
        if doomed:
            self._rows = {image_id: number for number, image_id in enumerate(self._ids)}
            self.results_changed.emit(len(self._ids))

    # -- thumbnails --------------------------------------------------------------------------------

    def _pixmap(self, path: str) -> QPixmap | None:
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if path not in self._failed:
            self.loader.request(path)
        return None

    def _thumbnail_loaded(self, path: str, image: QImage) -> None:
        self._pixmaps[path] = QPixmap.fromImage(image)
        while len(self._pixmaps) > MAX_CACHED_PIXMAPS:
            self._pixmaps.popitem(last=False)
        self._notify(path)

    def _thumbnail_failed(self, path: str, reason: str) -> None:
        self._failed.add(path)
        self._notify(path)

    def _notify(self, path: str) -> None:
        image_id = self._path_ids.get(path)
        row = self._rows.get(image_id) if image_id is not None else None
        if row is not None:
            model_index = self.index(row)
            self.dataChanged.emit(
                model_index, model_index, [Qt.ItemDataRole.DecorationRole, ThumbnailStateRole]
            )

    def loaded_thumbnails(self) -> int:
        return len(self._pixmaps)
