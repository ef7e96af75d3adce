"""The "Train a LoRA…" dialog over a scripted engine: folder summary, defaults, the Advanced fold, the
refusal without a model, and the progress view driven by fake training events (no training here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from ldm_studio.app.backend import ModelSummary
from ldm_studio.app.draft import Draft
from ldm_studio.app.lora_training_job import LoraTrainingJob, TrainingPlan, TrainingProgress, TrainingStopped
from ldm_studio.app.lora_training_plan import lora_file, run_folder
from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker, qimage_from_array
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.paths import resource, user_dirs
from ldm_studio.ui.train_lora_dialog import TrainLoraDialog
from tests.app.fake_backend import ScriptedBackend
from tests.training.lora_helpers import write_odd_folder


class EmojiBackend(ScriptedBackend):
    def load(self, path: Path, device: str, dtype: str) -> ModelSummary:
        return dataclasses.replace(super().load(path, device, dtype), family="ldm-studio")


@pytest.fixture
def session(qtbot):
    backend = EmojiBackend(size=32)
    session = Session(EngineWorker(lambda: backend), Settings(), user_dirs().ensure())
    yield session
    assert session.shutdown(timeout=5)


@pytest.fixture
def loaded(qtbot, session):
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(resource("models", "emoji-ldm"))  # the scripted engine reads only its configs
    return session


def make_dialog(qtbot, session) -> TrainLoraDialog:
    dialog = TrainLoraDialog(LoraTrainingJob(session))
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_without_a_model_the_dialog_says_so_and_cannot_start(qtbot, session, tmp_path):
    dialog = make_dialog(qtbot, session)
    assert (
        dialog.base_label.text() == "Load a model first: a LoRA is trained for the model that is loaded now."
    )
    dialog.set_folder(write_odd_folder(tmp_path / "odd"))
    qtbot.waitUntil(lambda: "6 images" in dialog.summary_label.text(), timeout=10_000)
    assert not dialog.start_button.isEnabled()


def test_defaults_follow_the_model_and_the_advanced_fold_opens(qtbot, loaded):
    dialog = make_dialog(qtbot, loaded)
    assert "emoji-ldm" in dialog.base_label.text() and "32 px" in dialog.base_label.text()
    assert (dialog.steps.value(), dialog.rank.value(), dialog.learning_rate.text()) == (300, 16, "0.001")
    assert dialog.resolution.value() == 0 and dialog.resolution.text() == "native (32 px)"
    assert dialog.name_edit.text() == "my-style"
    assert dialog.file_label.text() == f"→ {lora_file('my-style', loaded.dirs)}"
    assert not dialog.advanced.isVisible()
    dialog.advanced_button.click()
    assert dialog.advanced.isVisible()
    assert (
        dialog.advanced.batch.value(),
        dialog.advanced.alpha.value(),
        dialog.advanced.sample_every.value(),
    ) == (16, 16.0, 50)
    assert not dialog.advanced.text_encoder.isEnabled()  # the emoji model's MiniLM takes no LoRA
    assert not dialog.start_button.isEnabled()  # no folder yet
    dialog.advanced_button.click()
    assert not dialog.advanced.isVisible()


def test_a_folder_is_summarised_and_names_the_lora(qtbot, loaded, tmp_path):
    folder = write_odd_folder(tmp_path / "cats")
    (folder / "image1.txt").unlink()
    dialog = make_dialog(qtbot, loaded)
    dialog.set_folder(folder)
    assert dialog.summary_label.text() == "Counting the images…"
    qtbot.waitUntil(lambda: dialog.start_button.isEnabled(), timeout=10_000)
    assert dialog.summary_label.text().startswith("6 images, 5 with captions · buckets 32×32 (6)")
    assert dialog.name_edit.text() == "cats"
    run_folder("cats", loaded.dirs).mkdir(parents=True)  # taken: the next folder pick names it cats-2
    dialog.set_folder(folder)
    assert dialog.name_edit.text() == "cats-2"
    dialog.name_edit.setText("bad:name")
    assert "no ':' or slashes" in dialog.file_label.text() and not dialog.start_button.isEnabled()
    dialog.set_folder(tmp_path / "missing")
    qtbot.waitUntil(lambda: "no such data folder" in dialog.summary_label.text(), timeout=10_000)


def test_a_stopped_run_of_the_same_name_is_offered_for_resume(qtbot, loaded, tmp_path):
    folder = write_odd_folder(tmp_path / "odd")
    run = run_folder("odd", loaded.dirs)
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"not read by the dialog")
    (run / "lora_config.toml").write_text(f'data = "{folder}"\nrank = 4\n\n[run]\nmax_steps = 40\n')
    (run / "loss.csv").write_text("step,loss\n10,0.5\n20,0.4\n")
    dialog = make_dialog(qtbot, loaded)
    dialog.set_folder(folder)
    assert dialog.name_edit.text() == "odd-2"  # a new run never lands on the stopped one
    dialog.name_edit.setText("odd")
    assert dialog.resume_banner.isVisible() and dialog.resume_button.isEnabled()
    assert dialog.resume_text.text().startswith("odd has a stopped run at step 20 of 40")
    qtbot.waitUntil(lambda: "6 images" in dialog.summary_label.text(), timeout=10_000)
    assert not dialog.start_button.isEnabled()


def test_the_progress_view_follows_the_training_events(qtbot, loaded, tmp_path):
    dialog = make_dialog(qtbot, loaded)
    job, view = dialog.job, dialog.progress_view
    out = lora_file("cats", loaded.dirs)
    plan = TrainingPlan(
        "cats", "emoji-ldm", out, run_folder("cats", loaded.dirs), 100, 10, ((5, 0.9), (10, 0.7))
    )
    job.started.emit(plan)
    assert dialog.pages.currentWidget() is view
    assert view.progress_bar.format() == "step 10 / 100" and view.curve.steps == [5, 10]
    assert view.pause_button.isVisible() and not view.try_button.isVisible()
    grid = np.zeros((66, 130, 3), np.uint8)
    job.progress.emit(TrainingProgress(11, 100, 0.61, None))
    assert "estimating" in view.pace_label.text()
    job.progress.emit(TrainingProgress(12, 100, 0.55, 150.0, qimage_from_array(grid)))
    assert view.progress_bar.value() == 12 and view.progress_bar.format() == "step 12 / 100"
    assert view.pace_label.text() == "loss 0.5500 · about 2 min left"
    assert view.curve.steps == [5, 10, 11, 12] and view.curve.losses[-1] == 0.55
    assert view.sample_label.pixmap().width() == 130 and "with the LoRA" in view.sample_caption.text()
    view.pause_button.click()
    assert not view.pause_button.isEnabled() and "Stopping" in view.pace_label.text()
    job.stopped.emit(TrainingStopped("cats", 12, 100, paused=True))
    assert view.resume_button.isVisible() and not view.pause_button.isVisible()
    assert "Paused at step 12 of 100" in view.message.text()

    job.last_file = out
    job.finished.emit(out)
    assert view.try_button.isVisible() and "<lora:cats:1>" in view.message.text()
    loaded.edit(Draft(GenerationRequest("cat face")))
    view.try_button.click()
    assert loaded.draft.request.prompt == "cat face, <lora:cats:1>"
    view.back_button.click()
    assert dialog.pages.currentIndex() == 0


def test_a_cancelled_run_goes_back_to_the_settings_with_resume_offered(qtbot, loaded, tmp_path):
    dialog = make_dialog(qtbot, loaded)
    run = run_folder("cats", loaded.dirs)
    run.mkdir(parents=True)
    (run / "checkpoint.pt").write_bytes(b"x")
    (run / "lora_config.toml").write_text('data = "/data/cats"\n\n[run]\nmax_steps = 100\n')
    dialog.job.started.emit(TrainingPlan("cats", "emoji-ldm", lora_file("cats", loaded.dirs), run, 100))
    dialog.job.stopped.emit(TrainingStopped("cats", 7, 100, paused=False))
    assert dialog.pages.currentIndex() == 0 and dialog.name_edit.text() == "cats"
    assert dialog.resume_banner.isVisible()


def test_the_create_menu_opens_one_dialog(qtbot, loaded):
    from ldm_studio.ui.main_window import MainWindow

    window = MainWindow(loaded)
    qtbot.addWidget(window)
    action = next(action for action in window.create_menu.actions() if action.text() == "Train a &LoRA…")
    action.trigger()
    dialogs = window.findChildren(TrainLoraDialog)
    assert len(dialogs) == 1 and dialogs[0].isVisible()
    dialogs[0].close()
    action.trigger()
    assert window.findChildren(TrainLoraDialog) == dialogs and dialogs[0].isVisible()
