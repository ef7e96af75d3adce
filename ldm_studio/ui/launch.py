"""Starting the window: paint first, then load the model on the worker thread.

torch and diffusers are imported by the worker, never on the path to the first paint.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
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


def close_on_signals(loop: asyncio.AbstractEventLoop, window, app) -> None:
    """SIGTERM (logout, ``kill``) and SIGINT (Ctrl+C) close the window the normal way.

    Python's default handling would end the process on the spot: no cancelled generation, no saved
    settings, no log line. Through the event loop the close runs as if the user had clicked ✕.
    """

    def close(name: str) -> None:
        log.info("%s received: closing the window", name)
        window.close()
        app.quit()

    for number in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(number, close, number.name)
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # event loops without signal support (Windows) keep the default handling


def log_first_paint(window) -> None:
    """One log line when the window first paints: start-up is measured up to here (bench/startup.py)."""
    from PySide6.QtCore import QEvent, QObject

    class FirstPaint(QObject):
        def eventFilter(self, watched, event) -> bool:  # noqa: N802 (Qt API)
            if event.type() == QEvent.Type.Paint:
                watched.removeEventFilter(self)
                log.info("window painted")
            return False

    window.installEventFilter(FirstPaint(window))


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

    from ldm_studio.app.single_instance import InstanceGuard, bring_to_front
    from ldm_studio.desktop import APP_ID
    from ldm_studio.ui.about_dialog import application_icon

    app.setDesktopFileName(APP_ID)  # lets Wayland/X11 docks match the window to the .desktop file
    app.setWindowIcon(application_icon())
    guard = InstanceGuard()
    claim = guard.claim({"model": str(Path(model).resolve()) if model else None})
    if not claim.primary:
        print(f"ldm-studio: {claim.message}", file=sys.stderr)
        if not claim.answered:
            from PySide6.QtWidgets import QMessageBox

            QMessageBox.warning(None, APP_NAME, claim.message)
        return 0 if claim.answered else 1
    if claim.message:
        log.warning(claim.message)

    import qasync

    from ldm_studio.app.settings import Settings
    from ldm_studio.app.studio import build_session
    from ldm_studio.ui.main_window import MainWindow

    settings = Settings.load(dirs.config)
    session = build_session(dirs, settings)
    worker = session.worker
    window = MainWindow(session)
    log_first_paint(window)
    worker.modelLoaded.connect(lambda summary: log.info("model ready: %s", summary.name))
    window.show()

    def come_forward(request: dict) -> None:
        bring_to_front(window)
        if request.get("model"):
            session.load_model(request["model"])

    guard.activationRequested.connect(come_forward)

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closing = asyncio.Event()
    app.aboutToQuit.connect(closing.set)
    close_on_signals(loop, window, app)

    async def start() -> None:
        first = initial_model(model, settings.last_model)
        if first:
            session.load_model(first)
        await session.library.refresh()

    with loop:
        loop.create_task(start())
        loop.run_until_complete(closing.wait())
    if not worker.shutdown(timeout=1.0):  # the window's close already waited for it
        # The worker is inside one torch call that cannot be interrupted (a model load, a long step).
        # Letting the interpreter tear that thread down aborts the process ("terminate called
        # without an active exception"); the settings and gallery are saved by now, so leave at once.
        log.warning("the worker is still busy; exiting without waiting for it")
        log.info("LDM Studio closed")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    guard.release()
    log.info("LDM Studio closed")
    return 0
