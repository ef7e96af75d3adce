"""Training a LoRA from the session, without widgets: a tiny SD 1.x model and six odd-sized images on the
real trainer, in the job's own thread (pause keeps a checkpoint, resume finishes, the file is reported)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage

from ldm_studio.app.backend import ModelSummary
from ldm_studio.app.draft import Draft
from ldm_studio.app.lora_training_job import (
    FolderReport,
    LoraTrainingJob,
    TrainingPlan,
    TrainingProgress,
    TrainingStopped,
)
from ldm_studio.app.lora_training_plan import (
    LoraTrainingChoice,
    free_name,
    lora_file,
    name_problem,
    run_folder,
    stopped_run,
    suggested_choice,
    to_config,
    with_lora_tag,
)
from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.paths import user_dirs
from tests.app.fake_backend import ScriptedBackend
from tests.engine.checkpoint_factory import tiny
from tests.training.lora_helpers import write_odd_folder

DIRECT = Qt.ConnectionType.DirectConnection


class FamilyBackend(ScriptedBackend):
    """The scripted engine, reporting the family a real load of the tiny model reports."""

    def load(self, path: Path, device: str, dtype: str) -> ModelSummary:
        return dataclasses.replace(super().load(path, device, dtype), family="sd1")


@pytest.fixture
def session(qtbot):
    backend = FamilyBackend(size=32)
    session = Session(EngineWorker(lambda: backend), Settings(), user_dirs().ensure())
    yield session
    assert session.shutdown(timeout=5)


@pytest.fixture
def loaded(qtbot, session):
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(tiny("sd1").folder)
    return session


@pytest.fixture
def job(qtbot, session):
    job = LoraTrainingJob(session, threads=1)
    yield job
    assert job.shutdown(timeout=60)


def small_choice(data: Path, name: str = "zq-style", steps: int = 4) -> LoraTrainingChoice:
    return LoraTrainingChoice(
        data=data, name=name, steps=steps, rank=4, alpha=2.0, learning_rate=5e-3, trigger="zqstyle",
        resolution=32, batch=2, sample_every=4,
    )  # fmt: skip


def test_no_model_is_refused_in_a_sentence(qtbot, session, job, tmp_path):
    with qtbot.waitSignal(job.failed, timeout=1000) as refused:
        assert not job.start(small_choice(write_odd_folder(tmp_path / "odd")))
    assert refused.args == ["Load a model first: a LoRA is trained for the model that is loaded now."]
    assert not job.running


def test_a_model_the_trainer_cannot_adapt_is_refused(qtbot, session, job, tmp_path):
    session.model = ModelSummary("vae.safetensors", "/models/vae.safetensors", "vae", "CPU", "float32", 512)
    assert "is not a model a LoRA can be trained for" in job.refusal()


def test_progress_pause_keeps_a_checkpoint_and_resume_finishes(qtbot, loaded, job, tmp_path):
    data = write_odd_folder(tmp_path / "odd")
    dirs = loaded.dirs
    events: list[object] = []
    statuses: list[str] = []
    for signal in (job.started, job.progress, job.stopped, job.finished, job.failed):
        signal.connect(events.append)
    loaded.status.connect(lambda text, _ms: statuses.append(text))
    # direct: pause in the training thread itself, so the run stops exactly after step 2
    job.progress.connect(lambda update: job.pause() if update.step == 2 else None, DIRECT)

    with qtbot.waitSignal(job.stopped, timeout=60_000):
        assert job.start(small_choice(data))
    plan = events[0]
    assert isinstance(plan, TrainingPlan) and plan.total == 4 and plan.start_step == 0
    assert plan.out_file == lora_file("zq-style", dirs) == dirs.data / "loras" / "zq-style.safetensors"
    steps = [event for event in events if isinstance(event, TrainingProgress)]
    assert [update.step for update in steps] == [1, 2]
    assert steps[0].seconds_left is None and steps[1].seconds_left is not None
    assert events[-1] == TrainingStopped("zq-style", 2, 4, paused=True)
    assert (run_folder("zq-style", dirs) / "checkpoint.pt").is_file() and not plan.out_file.exists()
    qtbot.waitUntil(lambda: any("Paused zq-style at step 2" in text for text in statuses))

    stopped = stopped_run("zq-style", dirs)  # what the dialog finds when it is opened again
    assert (stopped.step, stopped.total, stopped.choice) == (2, 4, small_choice(data))
    with qtbot.waitSignal(job.failed, timeout=1000) as refused:
        assert not job.start(small_choice(data))
    assert refused.args == ["zq-style has a stopped run: resume it, or pick another name."]

    events.clear()
    with qtbot.waitSignal(job.finished, timeout=60_000) as done:
        assert job.resume("zq-style")
    assert done.args == [plan.out_file] and plan.out_file.is_file()
    resumed = events[0]
    assert resumed.start_step == 2 and [step for step, _ in resumed.history] == [1, 2]
    steps = [event for event in events if isinstance(event, TrainingProgress)]
    assert [update.step for update in steps] == [3, 4]
    assert steps[0].sample is None and not steps[1].sample.isNull()  # sample_every = 4
    assert steps[1].sample.width() > 1.9 * steps[1].sample.height()  # 2 prompts x (2 with, 2 without)
    assert stopped_run("zq-style", dirs) is None and job.last_file == plan.out_file
    preview = QImage(str(plan.out_file.with_name("zq-style.preview.png")))  # the picker's thumbnail
    assert preview.size() == QSize(128, 128)  # one 32 px tile of the grid, as the trainer enlarged it
    assert preview.pixelColor(64, 64) == steps[1].sample.pixelColor(2 + 64, 2 + 64)
    qtbot.waitUntil(lambda: any(text.startswith("Trained zq-style") for text in statuses))

    loaded.edit(Draft(GenerationRequest("a red ball")))
    with qtbot.waitSignal(loaded.draftChanged) as changed:
        job.try_it()
    assert changed.args[1] == "prompt"
    assert loaded.draft.request.prompt == "a red ball, <lora:zq-style:1>"


def test_a_second_run_waits_for_the_first(qtbot, loaded, job, tmp_path):
    data = write_odd_folder(tmp_path / "odd")
    job.progress.connect(lambda update: job.cancel(), DIRECT)
    with qtbot.waitSignal(job.stopped, timeout=60_000) as stopped:
        assert job.start(small_choice(data, "first"))
        with qtbot.waitSignal(job.failed, timeout=1000) as refused:
            assert not job.start(small_choice(data, "second"))
    assert refused.args == ["A LoRA is training already: wait for it, or pause it first."]
    assert stopped.args[0].step == 1 and not stopped.args[0].paused
    assert stopped_run("first", loaded.dirs) is not None and stopped_run("second", loaded.dirs) is None


def test_folder_summary_comes_from_another_thread(qtbot, loaded, job, tmp_path):
    data = write_odd_folder(tmp_path / "odd")
    (data / "image0.txt").unlink()
    with qtbot.waitSignal(job.folderSummarised, timeout=10_000) as summary:
        job.summarise(data, 64)
    report = summary.args[0]
    assert (report.images, report.captioned, report.error) == (6, 5, "")
    assert sum(report.buckets.values()) == 6 and len(report.buckets) > 1  # odd aspect ratios
    with qtbot.waitSignal(job.folderSummarised, timeout=10_000) as missing:
        job.summarise(tmp_path / "nowhere")
    assert isinstance(missing.args[0], FolderReport) and "no such data folder" in missing.args[0].error


def test_the_choice_becomes_the_trainers_config(tmp_path):
    from ldm_studio.training.lora_training import LoraTrainingConfig

    dirs = user_dirs()
    trainer = LoraTrainingConfig()
    default = LoraTrainingChoice(tmp_path, "x")
    assert (default.steps, default.rank, default.alpha, default.batch) == (
        trainer.run.max_steps, trainer.rank, trainer.alpha, trainer.run.batch_size
    )  # fmt: skip
    assert default.learning_rate == trainer.optim.learning_rate
    assert (default.keep_tags, default.resolution, default.text_encoder) == (
        trainer.keep_tags, trainer.resolution, trainer.text_encoder
    )  # fmt: skip
    config = to_config(small_choice(tmp_path, steps=50), Path("/models/base"), dirs, threads=1)
    assert (config.base, config.data, config.rank, config.trigger) == (
        Path("/models/base"),
        tmp_path,
        4,
        "zqstyle",
    )
    assert (config.run.max_steps, config.run.batch_size, config.run.sample_every) == (50, 2, 4)
    assert config.run.num_threads == 1 and config.optim.warmup_steps == 5
    assert (
        config.out.parent == dirs.data / "loras" and config.run_folder == dirs.data / "lora-runs" / "zq-style"
    )


def test_names_and_prompt_tags():
    assert (
        name_problem("") and name_problem("a:b") and name_problem("../x") and not name_problem("My style-2")
    )
    dirs = user_dirs()
    assert free_name("style", dirs) == "style"
    run_folder("style", dirs).mkdir(parents=True)
    assert free_name("style", dirs) == "style-2"
    draft = Draft(GenerationRequest("cat face "))
    tagged = with_lora_tag(draft, "style")
    assert tagged.request.prompt == "cat face, <lora:style:1>"
    assert with_lora_tag(tagged, "style") == tagged
    assert with_lora_tag(Draft(), "style", 0.5).request.prompt == "<lora:style:0.5>"
    emoji = ModelSummary("emoji", "/m", "ldm-studio", "CPU", "float32", 32)
    assert suggested_choice(Path(), "s", emoji).batch > suggested_choice(Path(), "s", None).batch
