from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt

from ldm_studio.app.backend import TorchBackend
from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.paths import user_dirs
from ldm_studio.ui import main_window as main_window_module
from ldm_studio.ui.main_window import MainWindow
from ldm_studio.ui.timeline_bar import VIEW_BOTH
from tests.app.fake_backend import ScriptedBackend


@pytest.fixture
def studio(qtbot):
    backend = ScriptedBackend(size=32)
    worker = EngineWorker(lambda: backend)
    window = MainWindow(Session(worker, Settings(), user_dirs().ensure()))
    qtbot.addWidget(window)
    with qtbot.waitSignal(worker.modelLoaded, timeout=5000):
        window.load_model("/models/emoji")
    window.backend = backend
    window.prompt_panel.prompt.set_text("red heart")
    window.prompt_panel.steps.setValue(6)
    yield window
    worker.shutdown(timeout=5)


def finish_one(qtbot, window):
    with qtbot.waitSignal(window.session.worker.jobFinished, timeout=5000):
        window.generate()


def test_the_timeline_scrubs_every_step_after_a_generation(qtbot, studio):
    finish_one(qtbot, studio)
    timeline = studio.create_page.timeline
    assert [frame.index for frame in timeline.frames] == [1, 2, 3, 4, 5, 6]
    assert timeline.branch.isEnabled() and timeline.export.isEnabled()
    timeline.slider.setFocus()
    timeline.slider.setValue(6)
    qtbot.keyClick(timeline.slider, Qt.Key.Key_Left)
    assert timeline.slider.value() == 5
    assert "Step 5/6" in timeline.label.text()
    shown = studio.create_page.preview.image()
    assert shown.pixelColor(0, 0).red() == int(255 * 5 / 6)  # the fake's step-5 preview shade
    timeline.view.setCurrentIndex(timeline.view.findData(VIEW_BOTH))
    assert studio.create_page.preview._pair is not None


def test_branching_keeps_the_first_steps_and_runs_the_rest(qtbot, studio):
    finish_one(qtbot, studio)
    parent = studio.session.last_result.result
    studio.create_page.timeline.slider.setValue(2)
    studio.prompt_panel.prompt.set_text("blue heart")
    with qtbot.waitSignal(studio.session.worker.jobFinished, timeout=5000):
        studio.create_page.timeline.branch.click()
    branch = studio.backend.branches[-1]
    assert branch.step == 2 and branch.parent is parent
    assert studio.backend.requests[-1].prompt == "blue heart"
    assert [frame.index for frame in studio.create_page.timeline.frames] == [1, 2, 3, 4, 5, 6]
    assert "Branched from step 2" in studio.create_page.progress.format()


def test_export_goes_through_the_worker_with_the_dialog_choices(qtbot, studio, tmp_path, monkeypatch):
    finish_one(qtbot, studio)
    target = tmp_path / "out" / "timeline.gif"

    class Accepting(main_window_module.TimelineExportDialog):
        def exec(self):
            self.file.edit.setText(str(target))
            self.fps.setValue(12)
            return self.DialogCode.Accepted

    monkeypatch.setattr(main_window_module, "TimelineExportDialog", Accepting)
    with qtbot.waitSignal(studio.session.worker.taskFinished, timeout=5000):
        studio.export_timeline()
    assert studio.backend.exports == [(studio.session.last_result.result, target, False, 12.0, 1.0)]
    assert "Timeline saved" in studio.create_page.progress.format()
    assert studio.session.task_running == ""


def test_save_image_as_writes_the_image_with_its_settings(qtbot, studio, tmp_path):
    from ldm_studio.gallery.metadata import read_metadata

    studio.prompt_panel.random_seed.setChecked(False)
    studio.prompt_panel.seed.setText("31")
    finish_one(qtbot, studio)
    path = studio.save_image_as(str(tmp_path / "mine.png"))
    assert read_metadata(path).seed == 31 and read_metadata(path).prompt == "red heart"
    assert studio.save_image_as(str(tmp_path / "missing-folder" / "x.png")) is None
    assert "Could not save" in studio.banner_text()


def test_real_engine_branch_reproduces_and_timeline_exports(qtbot, tiny_sd_folder, tmp_path):
    """Session, worker and torch backend: a branch with the parent's settings gives the same pixels."""
    from PIL import Image

    from ldm_studio.app.draft import Draft

    worker = EngineWorker(lambda: TorchBackend())
    session = Session(worker, Settings(), user_dirs().ensure())
    finished = []
    worker.jobFinished.connect(finished.append)
    with qtbot.waitSignal(worker.modelLoaded, timeout=60000):
        worker.load_model(tiny_sd_folder, "cpu", "auto")
    request = GenerationRequest("a cat", seed=5, steps=5, sampler="Euler a")
    session.edit(Draft(request, 5, random_seed=False))
    with qtbot.waitSignal(worker.jobFinished, timeout=60000):
        session.generate()
    session.edit(Draft(request, 999, random_seed=False))  # a branch keeps the parent's latent, so its seed
    with qtbot.waitSignal(worker.jobFinished, timeout=60000):
        session.branch_from(3)
    first, branched = (np.asarray(update.result.images[0]) for update in finished)
    assert np.array_equal(first, branched)
    assert finished[1].result.request.seed == 5  # the parent's seed: its latent fixes the noise
    assert finished[1].result.metadata["branch_step"] == 3
    out = tmp_path / "timeline.gif"
    with qtbot.waitSignal(worker.taskFinished, timeout=60000) as done:
        session.export_timeline(out, full=False, fps=5, hold=0.5)
    assert Path(done.args[1]) == out
    with Image.open(out) as animation:
        assert animation.n_frames == 5
    assert worker.shutdown(timeout=5)


def test_a_latent_walk_shows_its_frames_and_can_be_cancelled(qtbot, studio, tmp_path, monkeypatch):
    target = tmp_path / "walk.webp"

    class Accepting(main_window_module.WalkDialog):
        def exec(self):
            self.file.edit.setText(str(target))
            self.frames.setValue(4)
            self.to_prompt.setText("blue heart")
            return self.DialogCode.Accepted

    monkeypatch.setattr(main_window_module, "WalkDialog", Accepting)
    shown = []
    studio.session.worker.taskProgress.connect(lambda kind, done, total, image: shown.append((done, total)))
    with qtbot.waitSignal(studio.session.worker.taskFinished, timeout=5000) as done:
        studio.start_walk()
    assert done.args == ["walk", target]
    assert shown == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert "Latent walk saved" in studio.create_page.progress.format()
