import json
import threading

import pytest
from PySide6.QtCore import Qt

from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.paths import user_dirs
from ldm_studio.ui.main_window import MainWindow
from tests.app.fake_backend import ScriptedBackend
from tests.ui.windows import open_window


@pytest.fixture
def studio(qtbot):
    """A window over a scripted engine, with a model loaded."""
    window = open_window(qtbot, ScriptedBackend(size=32))
    yield window
    window.session.worker.shutdown(timeout=5)


def test_loaded_model_shows_name_device_and_dtype(studio):
    text = studio.model_panel.status.text()
    assert "emoji" in text and "CPU" in text and "float32" in text
    assert studio.prompt_panel.generate_button.isEnabled()
    assert studio.prompt_panel.width_box.value() == 32  # native size


def test_ctrl_enter_generates_with_live_previews_and_a_result_strip(qtbot, studio):
    panel = studio.prompt_panel
    qtbot.keyClicks(panel.prompt, "red heart")
    panel.random_seed.setChecked(False)
    panel.seed.setText("1234")
    panel.steps.setValue(4)
    panel.batch.setValue(3)
    previews = []
    studio.session.worker.jobStep.connect(lambda update: previews.append(studio.create_page.preview.image()))
    with qtbot.waitSignal(studio.session.worker.jobFinished, timeout=5000):
        qtbot.keyClick(panel.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: studio.create_page.results.count() == 3)
    request = studio.backend.requests[-1]
    assert (request.prompt, request.seed, request.steps, request.batch_size) == ("red heart", 1234, 4, 3)
    assert studio.create_page.preview.image() is not None
    assert "seed 1234" in studio.create_page.progress.format()
    assert not panel.cancel_button.isEnabled()


def test_progress_bar_counts_steps_and_shows_speed(qtbot, studio):
    studio.prompt_panel.prompt.set_text("cat face")
    studio.prompt_panel.steps.setValue(5)
    formats = []
    studio.session.worker.jobStep.connect(lambda update: formats.append(studio.create_page.progress.format()))
    with qtbot.waitSignal(studio.session.worker.jobFinished, timeout=5000):
        studio.generate()
    qtbot.waitUntil(lambda: len(formats) == 5)
    assert formats[0].startswith("Step 1/5") and formats[-1].startswith("Step 5/5")
    assert "left" in formats[-1]


def test_escape_cancels_a_running_generation(qtbot, studio):
    gate = threading.Event()
    studio.backend.gate = gate
    studio.prompt_panel.prompt.set_text("cat face")
    studio.prompt_panel.steps.setValue(50)
    studio.generate()
    assert studio.prompt_panel.cancel_button.isEnabled()
    with qtbot.waitSignal(studio.session.worker.jobCancelled, timeout=5000):
        qtbot.keyClick(studio, Qt.Key.Key_Escape)
        gate.set()
    assert "Cancelled" in studio.create_page.progress.format()
    assert studio.create_page.results.count() == 0
    assert not studio.prompt_panel.cancel_button.isEnabled()


def test_empty_prompt_and_failures_are_explained_not_fatal(qtbot, studio):
    studio.generate()
    assert "Type a prompt" in studio.banner_text()
    studio.backend.fail_with = "Out of memory at 32x32. Try a smaller size."
    studio.prompt_panel.prompt.set_text("cat")
    with qtbot.waitSignal(studio.session.worker.jobFailed, timeout=5000):
        studio.generate()
    assert "Out of memory" in studio.banner_text()


def test_a_model_that_fails_to_load_leaves_the_app_running_with_a_reason(qtbot, studio):
    studio.backend.failing_paths.add("/broken")
    with qtbot.waitSignal(studio.session.worker.modelFailed, timeout=5000):
        studio.load_model("/broken")
    assert "not a model" in studio.banner_text()
    assert "Could not load" in studio.model_panel.status.text()
    assert studio.prompt_panel.generate_button.isEnabled()  # the previous model is still loaded


def test_prompt_completion_offers_model_captions(qtbot, studio):
    prompt = studio.prompt_panel.prompt
    prompt.setFocus()
    qtbot.waitUntil(prompt.hasFocus)
    qtbot.keyClicks(prompt, "hea")
    completer = prompt.completer()
    assert completer.completionCount() == 1 and completer.currentCompletion() == "red heart"
    buttons = [b.text() for b in studio.prompt_panel._example_buttons]
    assert buttons == ["red heart", "cat face"]


def test_settings_persist_across_restarts(qtbot, studio):
    studio.prompt_panel.prompt.set_text("grinning face")
    studio.prompt_panel.steps.setValue(33)
    studio.prompt_panel.set_preview_settings("full", 4)
    studio.close()
    saved = json.loads((user_dirs().config / "settings.json").read_text())
    assert saved["last_request"]["prompt"] == "grinning face" and saved["last_request"]["steps"] == 33
    assert saved["preview_mode"] == "full" and saved["preview_every"] == 4
    again = MainWindow(
        Session(EngineWorker(lambda: ScriptedBackend()), Settings.load(user_dirs().config), user_dirs())
    )
    qtbot.addWidget(again)
    assert again.prompt_panel.prompt.text() == "grinning face"
    assert again.prompt_panel.steps.value() == 33
    assert again.prompt_panel.preview_settings() == ("full", 4)


def test_reuse_last_seed_fixes_the_drawn_seed(qtbot, studio):
    panel = studio.prompt_panel
    panel.prompt.set_text("cat")
    panel.random_seed.setChecked(True)
    with qtbot.waitSignal(studio.session.worker.jobFinished, timeout=5000):
        studio.generate()
    drawn = studio.backend.requests[-1].seed
    assert panel.seed.text() == str(drawn)
    panel.reuse_seed.click()
    assert not panel.random_seed.isChecked()
    assert studio.session.job_request().seed == drawn


def test_a_dropped_png_fills_the_prompt_panel(qtbot, studio, tmp_path):
    from PIL import Image, PngImagePlugin
    from PySide6.QtCore import QMimeData, QUrl

    from ldm_studio.ui.main_window import _dropped_pngs

    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        'a lighthouse, "stormy"\nNegative prompt: blurry\n'
        "Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 424242, Size: 64x48, Model: sd15",
    )
    path = tmp_path / "from-a1111.png"
    Image.new("RGB", (64, 48)).save(path, pnginfo=info)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)), QUrl.fromLocalFile(str(tmp_path / "notes.txt"))])
    assert _dropped_pngs(mime) == [path]
    studio.reuse_file(path)
    request = studio.session.job_request()
    assert request.prompt == 'a lighthouse, "stormy"' and request.negative_prompt == "blurry"
    assert (request.seed, request.steps, request.guidance) == (424242, 28, 6.5)
    assert (request.sampler, request.width, request.height) == ("DPM++ 2M Karras", 64, 48)


def test_a_png_without_settings_is_explained(qtbot, studio, tmp_path):
    from PIL import Image

    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    studio.reuse_file(path)
    assert "no generation settings" in studio.banner_text()
    (tmp_path / "broken.png").write_bytes(b"not a png")
    studio.reuse_file(tmp_path / "broken.png")
    assert "cannot be read" in studio.banner_text()


def test_finished_images_land_in_the_gallery_tab_and_reuse_comes_back(qtbot, tmp_path):
    from ldm_studio.app.gallery_actions import GalleryActions
    from ldm_studio.app.saving import GallerySaver
    from ldm_studio.gallery.index import GalleryIndex
    from ldm_studio.gallery.store import GalleryStore
    from ldm_studio.gallery.thumbnails import ThumbnailCache

    store = GalleryStore(tmp_path / "pictures")
    index = GalleryIndex(tmp_path / "index.sqlite3")
    actions = GalleryActions(store, index, ThumbnailCache(tmp_path / "thumbs"))
    backend = ScriptedBackend()
    worker = EngineWorker(lambda: backend, GallerySaver(store))
    window = MainWindow(Session(worker, Settings(), user_dirs().ensure(), actions))
    gallery = window.gallery
    qtbot.addWidget(window)
    with qtbot.waitSignal(worker.modelLoaded, timeout=5000):
        window.load_model("/models/emoji")
    window.prompt_panel.prompt.set_text("a blue whale")
    window.prompt_panel.random_seed.setChecked(False)
    window.prompt_panel.seed.setText("77")
    window.prompt_panel.batch.setValue(2)
    with qtbot.waitSignal(worker.jobFinished, timeout=5000):
        window.generate()
    qtbot.waitUntil(lambda: gallery.model.rowCount() == 2, timeout=5000)
    window.prompt_panel.prompt.set_text("something else")
    window.prompt_panel.seed.setText("1")
    seeds = sorted(actions.metadata_for(row).seed for row in range(2))
    assert seeds == [77, 78]
    row = [row for row in range(2) if actions.metadata_for(row).seed == 78][0]
    actions.reuse(row, "all")
    assert window.prompt_panel.prompt.text() == "a blue whale"
    assert window.session.job_request().seed == 78
    window.close()
    assert not worker.is_alive


def test_generate_while_the_first_model_loads_waits_for_it_at_its_native_size(qtbot):
    backend = ScriptedBackend(size=32, load_gate=threading.Event())
    worker = EngineWorker(lambda: backend)
    window = MainWindow(Session(worker, Settings(), user_dirs().ensure()))
    qtbot.addWidget(window)
    window.show()
    try:
        with qtbot.waitSignal(worker.modelLoading, timeout=5000):
            window.load_model("/models/emoji")
        panel = window.prompt_panel
        assert panel.generate_button.isEnabled() and window.session.model is None
        panel.prompt.set_text("red heart")
        window.generate()  # the user does not wait for the load
        assert window.session.running == 1 and not backend.requests
        with qtbot.waitSignal(worker.jobFinished, timeout=5000):
            backend.load_gate.set()
        (request,) = backend.requests
        assert request.model == "/models/emoji"
        assert (request.width, request.height) == (32, 32)  # the model's size, not the panel's 512 default
        assert window.session.model is not None and window.session.model.path == "/models/emoji"
    finally:
        worker.shutdown(timeout=5)


def test_a_failed_switch_that_lost_the_old_model_says_no_model_is_loaded(qtbot, studio):
    studio.backend.lost_on_failure.add("/models/damaged")
    with qtbot.waitSignal(studio.session.worker.modelFailed, timeout=5000) as failed:
        studio.load_model("/models/damaged")
    assert "damaged" in failed.args[0] and "could not be loaded again" in failed.args[0]
    assert studio.session.model is None
    assert not studio.prompt_panel.generate_button.isEnabled()
    assert studio.placement_label.text() == "No model"


def test_a_generation_refused_before_its_first_step_says_so_under_the_viewer(qtbot, studio):
    studio.backend.fail_at_start = "DPM++ 2M Karras does not work with this model's noise schedule."
    studio.prompt_panel.prompt.set_text("cat face")
    with qtbot.waitSignal(studio.session.worker.jobFailed, timeout=5000):
        studio.generate()
    assert "noise schedule" in studio.banner_text()
    assert studio.create_page.timeline.label.text() == "Failed before its first step"
    assert not studio.prompt_panel.cancel_button.isEnabled()


def test_a_model_default_fills_the_panel_without_leaving_the_gallery_but_a_reuse_comes_back(studio):
    from PySide6.QtWidgets import QWidget

    studio.tabs.addTab(QWidget(), "Other")
    studio.tabs.setCurrentIndex(1)
    studio.session.replace_draft(studio.session.draft, "clip_skip")
    assert studio.tabs.currentIndex() == 1
    studio.session.replace_draft(studio.session.draft, "all")
    assert studio.tabs.currentIndex() == 0
