"""What the gallery tab can do to the images, without any widget: the list model, plus delete with
undo, export, import, rebuild, favourites and reuse, across the store, the index and the trash.

The gallery panel binds to ``model`` and to these signals, and calls the methods with row numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, Signal

from ldm_studio.app.gallery_model import GalleryModel
from ldm_studio.app.jobs import SavedImage
from ldm_studio.gallery.index import GalleryEntry, GalleryIndex
from ldm_studio.gallery.metadata import ImageMetadata, read_metadata
from ldm_studio.gallery.store import GalleryStore, write_atomic_exclusive
from ldm_studio.gallery.thumbnails import ThumbnailCache
from ldm_studio.gallery.trash import Trash, TrashBatch

log = logging.getLogger(__name__)


def _plural(count: int, noun: str = "image") -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


@dataclass(frozen=True)
class DeleteReport:
    """What one delete did, as the undo bar tells it."""

    moved: int
    text: str
    can_undo: bool


class GalleryActions(QObject):
    status = Signal(str)  # one sentence for the window's status bar
    deleted = Signal(object)  # DeleteReport
    undoDone = Signal(int)  # how many images came back
    modelsChanged = Signal()  # the list of model names in the index may have changed
    reuseRequested = Signal(object, str)  # ImageMetadata, "all" | "prompt" | "seed"

    def __init__(
        self,
        store: GalleryStore,
        index: GalleryIndex,
        thumbnails: ThumbnailCache,
        *,
        trash: Trash | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store, self.index = store, index
        self.trash = trash or Trash()
        self.model = GalleryModel(index, thumbnails, self)
        self._last_batch: TrashBatch | None = None
        self.model.background_failed.connect(self.status)
        self.index.add_root(store.root)

    @property
    def root(self) -> Path:
        return self.store.root

    # -- reading -----------------------------------------------------------------------------------

    def total(self) -> int:
        return self.index.count()

    def model_names(self) -> list[str]:
        return self.index.models()

    def entries(self, rows: list[int]) -> list[GalleryEntry]:
        return self.model.entries([row for row in rows if 0 <= row < self.model.rowCount()])

    def metadata_for(self, row: int) -> ImageMetadata | None:
        entries = self.entries([row])
        if not entries:
            return None
        try:
            return read_metadata(entries[0].path)
        except ValueError as error:
            self.status.emit(str(error))
            return None

    # -- actions -----------------------------------------------------------------------------------

    def add_saved(self, saved: list[SavedImage]) -> None:
        """Images the worker just wrote: index them from the metadata they came with, show them now."""
        known = set(self.model_names())
        for image in saved:
            self.model.add_saved(image.path, image.metadata)
        if any(image.metadata.model_name and image.metadata.model_name not in known for image in saved):
            self.modelsChanged.emit()

    def reuse(self, row: int, mode: str) -> None:
        metadata = self.metadata_for(row)
        if metadata is not None:
            self.reuseRequested.emit(metadata, mode)

    def set_favourite(self, rows: list[int], favourite: bool) -> None:
        if rows:
            self.model.set_favourite(rows, favourite)

    def export_to(self, folder: Path, rows: list[int]) -> list[Path]:
        """Copy the images (metadata and all) into ``folder``, never overwriting anything there."""
        written = []
        for entry in self.entries(rows):
            try:
                written.append(write_atomic_exclusive(entry.path.read_bytes(), folder / entry.path.name))
            except OSError as error:
                self.status.emit(f"Could not export {entry.path.name}: {error.strerror or error}.")
                return written
        self.status.emit(f"Exported {_plural(len(written))} to {folder}.")
        return written

    def delete(self, rows: list[int]) -> TrashBatch | None:
        """Move the images to the trash; ``deleted`` says what happened and whether undo can work."""
        entries = self.entries(rows)
        if not entries:
            return None
        batch = self.trash.delete([entry.path for entry in entries])
        gone = set(batch.deleted)
        self.index.remove_paths(gone)
        self.model.remove_ids([entry.id for entry in entries if entry.path in gone])
        if batch.failed:
            path, reason = batch.failed[0]
            self.status.emit(f"Could not delete {path.name}: {reason}.")
        where = "the system trash" if batch.system_trash else "the LDM Studio trash"
        self._last_batch = batch if batch.can_undo else None
        moved = len(batch.moved)
        self.deleted.emit(DeleteReport(moved, f"Moved {_plural(moved)} to {where}.", batch.can_undo))
        return batch

    @property
    def can_undo(self) -> bool:
        return self._last_batch is not None

    def forget_undo(self) -> None:
        self._last_batch = None

    def undo_delete(self) -> list[Path]:
        batch, self._last_batch = self._last_batch, None
        if batch is None:
            return []
        restored = self.trash.restore(batch)
        for path in restored:
            self.index.add(path)
        self.model.refresh()
        self.status.emit(f"Restored {_plural(len(restored))}.")
        self.undoDone.emit(len(restored))
        return restored

    def import_folder(self, folder: Path) -> None:
        self.status.emit(f"Importing {folder}…")
        self.model.reconcile_in_background([Path(folder)])

    def rebuild_index(self) -> None:
        self.status.emit("Rebuilding the gallery index…")
        self.model.rebuild_in_background()

    def start_background_scan(self) -> None:
        """Clear temp files killed processes left, then reconcile the index with the folders."""
        QThreadPool.globalInstance().start(self.store.remove_stale_temp_files)
        self.model.reconcile_in_background()

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Wait for background scans and thumbnails, then close the index (call when the app quits)."""
        self.model.wait_for_background(timeout_ms)
        self.model.loader.cancel_all()
        self.model.loader.wait(timeout_ms)
        self.index.close()
