"""Opening checkpoints through the window: what a file is shows before loading; settings per file."""

import shutil

import pytest

from ldm_studio.app.backend import TorchBackend
from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.engine.checkpoints import get_model_settings
from ldm_studio.engine.preview_settings import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.paths import user_dirs
from ldm_studio.ui import main_window as main_window_module
from ldm_studio.ui.main_window import MainWindow
from tests.engine.checkpoint_factory import single_file


@pytest.fixture
def real_window(qtbot):
    worker = EngineWorker(lambda: TorchBackend())
    window = MainWindow(Session(worker, Settings(), user_dirs().ensure()))
    qtbot.addWidget(window)
    yield window
    worker.shutdown(timeout=10)


def test_a_single_file_checkpoint_is_described_then_loads_and_generates(qtbot, real_window, tmp_path):
    path = tmp_path / "my-model.safetensors"
    shutil.copy(single_file("sd1"), path)
    described = []
    real_window.session.worker.modelInspected.connect(
        lambda preview: described.append(real_window.model_panel.status.text())
    )
    with qtbot.waitSignal(real_window.session.worker.modelLoaded, timeout=120000):
        real_window.load_model(str(path))
    assert "Stable Diffusion 1.x" in described[0] and "needs about" in described[0]
    assert "SD 1.x" in real_window.model_panel.status.text()
    assert real_window.model_panel.settings_button.isEnabled()
    with qtbot.waitSignal(real_window.session.worker.jobFinished, timeout=120000) as done:
        real_window.session.worker.generate(
            GenerationRequest("cat", seed=1, steps=2, width=64, height=64), PreviewSettings()
        )
    assert done.args[0].images[0].width() == 64


def test_an_unknown_file_is_refused_with_what_was_found(qtbot, real_window, tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"a": 1}'.ljust(16))
    with qtbot.waitSignal(real_window.session.worker.modelFailed, timeout=60000) as failed:
        real_window.load_model(str(path))
    assert failed.args[0]
    assert "Could not load" in real_window.model_panel.status.text()
    assert real_window.banner_text()


def test_model_settings_are_remembered_per_file_and_reload(qtbot, tmp_path, monkeypatch):
    from tests.app.fake_backend import ScriptedBackend

    backend = ScriptedBackend()
    worker = EngineWorker(lambda: backend)
    window = MainWindow(Session(worker, Settings(), user_dirs().ensure()))
    qtbot.addWidget(window)
    model = tmp_path / "sd2-768.safetensors"
    model.write_bytes(b"stand-in")
    with qtbot.waitSignal(worker.modelLoaded, timeout=5000):
        window.load_model(str(model))

    class Accepting(main_window_module.ModelSettingsDialog):
        def exec(self):
            self.prediction.setCurrentIndex(self.prediction.findData("v_prediction"))
            self.savers["vae_tiling"].setChecked(True)
            return self.DialogCode.Accepted

    monkeypatch.setattr(main_window_module, "ModelSettingsDialog", Accepting)
    with qtbot.waitSignal(worker.modelLoaded, timeout=5000):
        window.edit_model_settings()
    saved = get_model_settings(model)
    assert saved["prediction_type"] == "v_prediction" and saved["vae_tiling"] is True
    assert backend.loads == [str(model), str(model)]
    worker.shutdown(timeout=5)
