"""The list of known models for the window: scanned off the GUI thread, folders added by the user.

Only the catalogue's public names are used (``app.catalog.discover``, ``engine.library.ModelLibrary``,
``user_model_folders``, ``add_model_folder``); the engine library is imported when first needed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ldm_studio.app.catalog import discover

log = logging.getLogger(__name__)


class ModelLibraryModel(QObject):
    """Observable list of models: ``entriesChanged(entries)`` after each scan (cheap, then detailed)."""

    entriesChanged = Signal(list)  # catalog entries, then library entries (with family and hash)
    folderAdded = Signal(str)
    failed = Signal(str)  # one sentence

    def __init__(self, models_folder: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.models_folder = Path(models_folder)
        self.entries: list = []

    def folders(self) -> list[Path]:
        from ldm_studio.engine.library import user_model_folders

        return [self.models_folder, *user_model_folders()]

    async def refresh(self) -> list:
        """Names first (fast), then families and hashes; each step is announced."""
        self._set(await asyncio.to_thread(discover, self.folders()))
        from ldm_studio.engine.library import ModelLibrary

        library = await asyncio.to_thread(ModelLibrary.default)
        self._set(await asyncio.to_thread(library.scan))
        return self.entries

    def add_folder(self, folder: str | Path, schedule: Callable[[object], object] | None = None) -> bool:
        """Remember ``folder`` and rescan (on the running event loop, or through ``schedule``)."""
        from ldm_studio.engine.errors import ModelLoadError
        from ldm_studio.engine.library import add_model_folder

        try:
            add_model_folder(Path(folder))
        except (ModelLoadError, OSError) as error:
            self.failed.emit(str(error))
            return False
        self.folderAdded.emit(str(folder))
        (schedule or asyncio.ensure_future)(self.refresh())
        return True

    def _set(self, entries: list) -> None:
        self.entries = list(entries)
        self.entriesChanged.emit(self.entries)
