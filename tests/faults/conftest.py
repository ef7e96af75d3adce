"""Shared fixtures for the fault tests: the real engine behind the real worker (and window), the log."""

from __future__ import annotations

import logging
import threading

import pytest

from ldm_studio.app.backend import TorchBackend
from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.logs import setup_logging
from ldm_studio.paths import user_dirs
from tests.faults.helpers import RecordingSaver


@pytest.fixture
def real_worker(qtbot, tiny_sd_folder):
    """An EngineWorker over the real TorchBackend with the tiny model loaded, and its saver."""
    threads_before = set(threading.enumerate())
    saver = RecordingSaver()
    worker = EngineWorker(TorchBackend, saver)
    with qtbot.waitSignal(worker.modelLoaded, timeout=60_000):
        worker.load_model(tiny_sd_folder, "cpu", "auto")
    yield worker, saver
    assert worker.shutdown(timeout=10)
    leaked = [thread for thread in threading.enumerate() if thread not in threads_before]
    assert leaked == [], f"threads left running: {leaked}"


@pytest.fixture
def log_file():
    """The app's log file in this test's log dir, set up as the app does; handlers removed after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    path = setup_logging(user_dirs().ensure().logs)
    yield path
    for handler in root.handlers[:]:
        if handler not in handlers:
            handler.close()
            root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def make_window(qtbot, tiny_sd_folder):
    """A studio window over the real engine with the tiny model loaded; ``saver`` stands in for autosave."""
    from ldm_studio.ui.main_window import MainWindow

    workers = []

    def make(saver=None):
        worker = EngineWorker(TorchBackend, saver)
        workers.append(worker)
        window = MainWindow(Session(worker, Settings(), user_dirs().ensure()))
        qtbot.addWidget(window)
        window.show()
        with qtbot.waitSignal(worker.modelLoaded, timeout=60_000):
            window.load_model(str(tiny_sd_folder))
        return window

    yield make
    for worker in workers:
        assert worker.shutdown(timeout=10)
