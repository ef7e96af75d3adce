"""The Tiny decoder preview and Draft decode as a user meets them in the window's prompt panel."""

import pytest

from ldm_studio.engine.preview_settings import PreviewMode
from ldm_studio.ui.main_window import MainWindow
from tests.app.fake_backend import ScriptedBackend
from tests.ui.windows import open_window as open_scripted_window


def open_window(qtbot, tiny_decoders: tuple[str, ...]) -> MainWindow:
    return open_scripted_window(qtbot, ScriptedBackend(size=32, tiny_decoders=tiny_decoders))


@pytest.fixture
def taesd(tmp_path):
    path = tmp_path / "taesd_decoder.safetensors"
    path.write_bytes(b"not read by the scripted engine")
    return str(path)


def generate(qtbot, window: MainWindow) -> None:
    window.prompt_panel.prompt.set_text("cat face")
    window.prompt_panel.steps.setValue(2)
    with qtbot.waitSignal(window.session.worker.jobFinished, timeout=5000):
        window.prompt_panel.generate_button.click()


def choose_preview(window: MainWindow, mode: str) -> None:
    combo = window.prompt_panel.preview_mode
    index = combo.findData(mode)
    assert index >= 0, f"the Preview box offers no {mode!r}"
    combo.setCurrentIndex(index)


def test_tiny_decoder_preview_runs_with_the_installed_decoder_and_says_so(qtbot, taesd):
    window = open_window(qtbot, (taesd,))
    try:
        choose_preview(window, "tiny")
        generate(qtbot, window)
        used = window.backend.previews[-1]
        assert used.mode is PreviewMode.TINY and used.tiny_decoder == taesd
        reason = window.prompt_panel.preview_reason.reason.text()
        assert reason == "Tiny decoder preview: taesd_decoder.safetensors"
        assert window.backend.requests[-1].decoder == ""  # previews only: the saved image is the VAE's
    finally:
        window.session.worker.shutdown(timeout=5)


def test_without_a_tiny_decoder_the_choice_falls_back_to_fast_and_the_panel_says_why(qtbot):
    window = open_window(qtbot, ())
    try:
        choose_preview(window, "tiny")
        generate(qtbot, window)
        assert window.backend.previews[-1].mode is PreviewMode.FAST
        assert window.prompt_panel.preview_reason.reason.text() == "Fast preview: no tiny decoder for sd"
    finally:
        window.session.worker.shutdown(timeout=5)


def test_draft_decode_sends_the_tiny_decoder_for_the_final_image_and_is_remembered(qtbot, taesd):
    window = open_window(qtbot, (taesd,))
    try:
        window.prompt_panel.preview_reason.draft.setChecked(True)
        generate(qtbot, window)
        assert window.backend.requests[-1].decoder == taesd
        assert window.session.settings.draft_decode is True
        window.prompt_panel.preview_reason.draft.setChecked(False)
        generate(qtbot, window)
        assert window.backend.requests[-1].decoder == ""
    finally:
        window.session.worker.shutdown(timeout=5)
