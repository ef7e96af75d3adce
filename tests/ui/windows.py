"""The window as the tests open it: over a scripted engine, with a model loaded."""

from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.paths import user_dirs
from ldm_studio.ui.main_window import MainWindow
from tests.app.fake_backend import ScriptedBackend


def open_window(qtbot, backend: ScriptedBackend, model: str = "/models/emoji") -> MainWindow:
    """Shown, with ``model`` loaded; ``window.backend`` is the script. Shut its worker down after."""
    worker = EngineWorker(lambda: backend)
    window = MainWindow(Session(worker, Settings(), user_dirs().ensure()))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(worker.modelLoaded, timeout=5000):
        window.load_model(model)
    window.backend = backend
    return window
