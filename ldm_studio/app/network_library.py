"""The LoRA and embedding library for the window: scanned off the GUI thread, folders added by the user.

Shaped like ``session.library`` (the model list): ``entriesChanged`` after each scan, ``add_folder`` and
``refresh``. Everything that reads files (the scan, A1111 hashes for reuse) runs on one background
thread in order, so a reuse asked for while the first scan runs sees that scan's result. The engine
modules (which import torch) are imported there, never on the GUI thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ldm_studio.app.network_entries import NetworkEntry, NetworkKind, entry_from_embedding, entry_from_lora
from ldm_studio.app.network_resolution import NetworkResolution, resolve_networks
from ldm_studio.engine.catalog import EMBEDDING, LORA, library_folders
from ldm_studio.gallery.networks import NetworkRef

log = logging.getLogger(__name__)
KINDS = {"lora": LORA, "embedding": EMBEDDING}


class NetworkLibraryModel(QObject):
    """Observable list of LoRAs and embeddings (``NetworkEntry`` values, LoRAs first, by name)."""

    entriesChanged = Signal(list)
    scanningChanged = Signal(bool)
    folderAdded = Signal(str, str)  # folder, kind
    failed = Signal(str)  # one sentence
    resolved = Signal(int, object)  # ticket, NetworkResolution

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.entries: list[NetworkEntry] = []
        self._scanned = False
        self._hashes: dict[Path, str] = {}
        self._hash_cache = None  # engine.lora.HashCache, made on the background thread
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="network-library")
        self._closed = False

    # ---- reading ------------------------------------------------------------------------------
    @staticmethod
    def folders(kind: NetworkKind) -> list[Path]:
        return library_folders(KINDS[kind])

    def of_kind(self, kind: NetworkKind) -> list[NetworkEntry]:
        return [entry for entry in self.entries if entry.kind == kind]

    # ---- intents ------------------------------------------------------------------------------
    def refresh(self) -> Future:
        """Scan every LoRA and embedding folder again; ``entriesChanged`` follows."""
        return self._submit(self._scan)

    def add_folder(self, folder: str | Path, kind: NetworkKind) -> bool:
        """Remember ``folder`` for ``kind`` (e.g. A1111's ``models/Lora``) and rescan."""
        from ldm_studio.engine.catalog import add_folder
        from ldm_studio.engine.errors import ModelLoadError

        try:
            add_folder(Path(folder), KINDS[kind])
        except (ModelLoadError, OSError) as error:
            self.failed.emit(str(error))
            return False
        self.folderAdded.emit(str(folder), kind)
        self.refresh()
        return True

    def resolve(self, ticket: int, prompt: str, negative_prompt: str, wanted: Sequence[NetworkRef]) -> Future:
        """Find ``wanted`` in the library (by name, then by hash); ``resolved(ticket, result)`` follows."""
        return self._submit(lambda: self._resolve(ticket, prompt, negative_prompt, tuple(wanted)))

    def shutdown(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)

    # ---- the background thread ----------------------------------------------------------------
    def _submit(self, job) -> Future:  # noqa: ANN001 - a callable of no arguments
        if self._closed:
            future: Future = Future()
            future.cancel()
            return future
        return self._executor.submit(self._guarded, job)

    def _guarded(self, job) -> object:  # noqa: ANN001
        try:
            return job()
        except Exception as error:  # a scan must never take the window down; say why and log it
            log.exception("the LoRA / embedding library failed")
            if not self._closed:
                self.failed.emit(f"Could not read the LoRA and embedding folders: {error}")
            return None

    def _cache(self):  # noqa: ANN202 - engine.lora.HashCache
        if self._hash_cache is None:
            from ldm_studio.engine.lora import HashCache

            self._hash_cache = HashCache.default()
        return self._hash_cache

    def _scan(self) -> list[NetworkEntry]:
        from ldm_studio.engine.embeddings import scan_embeddings
        from ldm_studio.engine.lora import scan_loras

        if not self._closed:
            self.scanningChanged.emit(True)
        try:
            cache = self._cache()
            loras = scan_loras(self.folders("lora"), hash_cache=cache)
            embeddings = scan_embeddings(self.folders("embedding"), hash_cache=cache)
            entries = [entry_from_lora(info) for info in loras] + [
                entry_from_embedding(info) for info in embeddings
            ]
            self.entries = entries  # one assignment: the GUI thread sees the old list or the new one
            self._scanned = True
        finally:
            if not self._closed:
                self.scanningChanged.emit(False)
        if not self._closed:
            self.entriesChanged.emit(list(entries))
        return entries

    def hash_of(self, entry: NetworkEntry) -> str:
        """A1111's full SHA-256 for ``entry`` (computed once per file version, then cached)."""
        if entry.sha256:
            return entry.sha256
        if entry.path not in self._hashes:
            cache = self._cache()
            if entry.kind == "lora":
                from ldm_studio.engine.lora import lora_sha256

                self._hashes[entry.path] = lora_sha256(entry.path, None, cache)
            else:
                from ldm_studio.engine.embeddings import ti_sha256

                self._hashes[entry.path] = ti_sha256(entry.path, cache)
        return self._hashes[entry.path]

    def _resolve(
        self, ticket: int, prompt: str, negative: str, wanted: tuple[NetworkRef, ...]
    ) -> NetworkResolution:
        if not self._scanned:
            self._scan()

        def hash_of(entry: NetworkEntry) -> str:
            try:
                return self.hash_of(entry)
            except OSError as error:
                log.warning("cannot hash %s: %s", entry.path, error)
                return ""

        result = resolve_networks(prompt, negative, wanted, self.entries, hash_of)
        if not self._closed:
            self.resolved.emit(ticket, result)
        return result
