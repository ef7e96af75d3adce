"""The parts picker: a FLUX transformer-only file fails for want of parts, the panel's Model settings…
opens its settings, the chosen files are remembered and the model then loads through the app."""

from __future__ import annotations

from contextlib import contextmanager

import pytest

import ldm_studio.ui.main_window as main_window_module
from ldm_studio.app.backend import TorchBackend
from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.engine.checkpoints.settings import get_model_settings
from ldm_studio.paths import user_dirs
from ldm_studio.ui.main_window import MainWindow
from ldm_studio.ui.model_settings_dialog import ModelSettingsDialog
from tests.flow_layouts import transformer_apart


@pytest.fixture(scope="module")
def bfl(tmp_path_factory):
    return transformer_apart(tmp_path_factory.mktemp("parts-ui"))


@contextmanager
def failed_load(qtbot, path):
    """The window after ``path`` failed to load: (window, worker, the worker's message)."""
    worker = EngineWorker(TorchBackend)
    window = MainWindow(Session(worker, Settings(), user_dirs().ensure()))
    qtbot.addWidget(window)
    window.session.set_placement("cpu", "float32")
    try:
        with qtbot.waitSignal(worker.modelFailed, timeout=30000) as failed:
            window.load_model(str(path))
        yield window, worker, failed.args[0]
    finally:
        worker.shutdown(timeout=10)


def test_the_dialog_lists_missing_parts_and_catches_a_wrong_file(qtbot, bfl):
    model, parts, _folder = bfl
    dialog = ModelSettingsDialog(model, {})
    qtbot.addWidget(dialog)
    box = dialog.parts
    assert set(box.paths) == {"clip_l", "t5xxl", "vae"}
    assert all(box.statuses[part].text() == "missing" for part in box.paths)
    box.paths["vae"].setText(str(parts / "clip_l.safetensors"))
    assert box.statuses["vae"].text() == "chosen: clip_l.safetensors"
    dialog.accept()
    assert dialog.result() != ModelSettingsDialog.DialogCode.Accepted  # kept open, with the sentence
    assert "is not the 16-channel FLUX VAE" in box.problem_label.text()


def test_choose_parts_from_the_failed_load_then_the_model_loads(qtbot, bfl, monkeypatch):
    model, parts, folder = bfl
    with failed_load(qtbot, model) as (window, worker, message):
        assert "without" in message
        panel = window.model_panel
        assert not panel.choose_parts.isHidden() and "without" in panel.status.text()
        opened = []

        class Choosing(ModelSettingsDialog):
            def exec(self):
                opened.append(self.model_path)
                for name, file in (("clip_l", "clip_l"), ("t5xxl", "t5xxl_fp16"), ("vae", "ae")):
                    self.parts.paths[name].setText(str(parts / f"{file}.safetensors"))
                self.parts.tokenizer.setText(str(folder))  # the tiny tokenizers, for the shipped ones
                assert all(label.text().startswith("chosen: ") for label in self.parts.statuses.values())
                self.accept()
                return self.result()

        monkeypatch.setattr(main_window_module, "ModelSettingsDialog", Choosing)
        with qtbot.waitSignal(worker.modelLoaded, timeout=60000) as loaded:
            panel.choose_parts.click()
        assert opened == [model]
        stored = get_model_settings(model)["parts"]
        assert stored["vae"].endswith("ae.safetensors") and stored["tokenizers"] == str(folder)
        assert loaded.args[0].path == str(model) and loaded.args[0].fit.family_label == "FLUX.1 dev"
        assert window.session.model.path == str(model) and panel.choose_parts.isHidden()


def test_a_model_too_big_for_memory_loads_once_the_user_says_try_anyway(qtbot, bfl, monkeypatch):
    from ldm_studio.engine import memory_check

    _model, _parts, folder = bfl
    monkeypatch.setattr(memory_check, "available_memory", lambda device, offload=False: 1000)
    with failed_load(qtbot, folder) as (window, worker, message):
        assert "Load even if memory looks short" in message
        panel = window.model_panel
        assert not panel.choose_parts.isHidden()

        class TryingAnyway(ModelSettingsDialog):
            def exec(self):
                assert self.parts is None  # a diffusers folder holds its parts
                self.savers["skip_memory_check"].setChecked(True)
                self.accept()
                return self.result()

        monkeypatch.setattr(main_window_module, "ModelSettingsDialog", TryingAnyway)
        with qtbot.waitSignal(worker.modelLoaded, timeout=60000):
            panel.choose_parts.click()
        assert get_model_settings(folder)["skip_memory_check"] is True
        assert window.session.model.path == str(folder)


def test_the_memory_switch_is_offered_for_flow_models_only(qtbot, bfl, tmp_path):
    model, _parts, _folder = bfl
    flow = ModelSettingsDialog(model, {})
    qtbot.addWidget(flow)
    assert "skip_memory_check" in flow.savers
    sd = ModelSettingsDialog(tmp_path / "sd15.safetensors", {})
    qtbot.addWidget(sd)
    assert "skip_memory_check" not in sd.savers and sd.parts is None
