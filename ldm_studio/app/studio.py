"""Putting the session together: the gallery on disk, the worker over the torch backend, the settings.

The window's launcher calls ``build_session``; tests build a ``Session`` from their own parts.
"""

from __future__ import annotations

from pathlib import Path

from ldm_studio.app.backend import TorchBackend
from ldm_studio.app.gallery_actions import GalleryActions
from ldm_studio.app.saving import GallerySaver
from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.gallery.index import GalleryIndex
from ldm_studio.gallery.store import GalleryStore
from ldm_studio.gallery.thumbnails import ThumbnailCache
from ldm_studio.paths import UserDirs


def build_session(dirs: UserDirs, settings: Settings | None = None) -> Session:
    """The app's session: images saved into the gallery by the worker while autosave is on."""
    settings = settings or Settings.load(dirs.config)
    store = GalleryStore(Path(settings.gallery_folder) if settings.gallery_folder else dirs.default_gallery)
    saver = GallerySaver(store, enabled=lambda: settings.autosave)
    worker = EngineWorker(lambda: TorchBackend(cache_dir=dirs.cache / "previews"), saver)
    gallery = GalleryActions(store, GalleryIndex(), ThumbnailCache())
    return Session(worker, settings, dirs, gallery)
