"""Starting the window: paint first, then load the model on the worker thread.

torch and diffusers are imported by the worker, never on the path to the first paint.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from ldm_studio import APP_AUTHOR, APP_NAME, __version__
from ldm_studio.logs import setup_logging
from ldm_studio.paths import user_dirs

log = logging.getLogger(__name__)


def initial_model(cli_model: str | None, last_model: str) -> str | None:
    """The model to open at start-up: the command line's, else the bundled one, else the last used."""
    from ldm_studio.app.catalog import default_model

    if cli_model:
        return cli_model
    bundled = default_model()
    if bundled is not None:
        return str(bundled)
    if last_model and Path(last_model).exists():
        return last_model
    return None


def run_window(model: str | None = None) -> int:
    from PySide6.QtWidgets import QApplication

    dirs = user_dirs().ensure()
    log_file = setup_logging(dirs.logs)
    log.info("LDM Studio %s starting; log at %s", __version__, log_file)

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_AUTHOR)
    app.setApplicationVersion(__version__)

    from ldm_studio.ui.style import apply_style

    apply_style(app)

    import qasync

    from ldm_studio.app.backend import TorchBackend
    from ldm_studio.app.saving import save_finished
    from ldm_studio.app.settings import Settings
    from ldm_studio.app.worker import EngineWorker
    from ldm_studio.gallery.index import GalleryIndex
    from ldm_studio.gallery.store import GalleryStore
    from ldm_studio.gallery.thumbnails import ThumbnailCache
    from ldm_studio.ui.gallery_panel import GalleryPanel
    from ldm_studio.ui.main_window import MainWindow

    settings = Settings.load(dirs.config)
    store = GalleryStore(Path(settings.gallery_folder) if settings.gallery_folder else dirs.default_gallery)

    def save(result):
        return save_finished(store, result) if settings.autosave else []

    worker = EngineWorker(lambda: TorchBackend(cache_dir=dirs.cache / "previews"), save)
    gallery = GalleryPanel(store, GalleryIndex(), ThumbnailCache())
    window = MainWindow(worker, settings, dirs, gallery)
    window.show()

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closing = asyncio.Event()
    app.aboutToQuit.connect(closing.set)

    async def start() -> None:
        first = initial_model(model, settings.last_model)
        if first:
            window.load_model(first)
        await window.refresh_models()

    with loop:
        loop.create_task(start())
        loop.run_until_complete(closing.wait())
    worker.shutdown(timeout=5.0)
    return 0
