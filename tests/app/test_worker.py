import threading

import pytest

from ldm_studio.app.backend import TorchBackend
from ldm_studio.app.saving import save_finished
from ldm_studio.app.worker import EngineWorker, FinishedUpdate, StepUpdate
from ldm_studio.engine.preview import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import read_metadata
from ldm_studio.gallery.store import GalleryStore
from tests.app.fake_backend import ScriptedBackend


@pytest.fixture
def make_worker(qtbot):
    workers = []

    def make(backend, saver=None):
        worker = EngineWorker(lambda: backend, saver)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        assert worker.shutdown(timeout=5)


def test_load_then_generate_reaches_the_gui_in_order(qtbot, make_worker):
    backend = ScriptedBackend()
    worker = make_worker(backend)
    with qtbot.waitSignal(worker.modelLoaded, timeout=5000) as loaded:
        worker.load_model("/models/a", "auto", "auto")
    assert loaded.args[0].name == "a"

    steps: list[StepUpdate] = []
    worker.jobStep.connect(steps.append)
    signals = [worker.jobStarted, worker.jobStep, worker.jobStep, worker.jobStep, worker.jobFinished]
    with qtbot.waitSignals(signals, order="strict", timeout=5000):
        worker.generate(GenerationRequest("cat", seed=3, steps=3), PreviewSettings())
    qtbot.waitUntil(lambda: len(steps) == 3)
    assert [step.index for step in steps] == [1, 2, 3]
    assert steps[-1].image.width() == 32 and not steps[-1].image.isNull()


def test_cancel_stops_the_job_and_nothing_is_saved(qtbot, make_worker):
    saved = []
    backend = ScriptedBackend(step_delay=0.02)
    worker = make_worker(backend, lambda result: saved.append(result) or [])
    worker.load_model("/m", "auto", "auto")
    finished = []
    worker.jobFinished.connect(finished.append)
    with qtbot.waitSignal(worker.jobStep, timeout=5000):
        worker.generate(GenerationRequest("cat", seed=1, steps=200), PreviewSettings())
    with qtbot.waitSignal(worker.jobCancelled, timeout=5000) as cancelled:
        worker.cancel()
    assert cancelled.args[0].at_step < 200
    qtbot.wait(50)
    assert finished == [] and saved == []


def test_cancel_drops_queued_generations(qtbot, make_worker):
    gate = threading.Event()
    backend = ScriptedBackend(gate=gate)
    worker = make_worker(backend)
    worker.load_model("/m", "auto", "auto")
    for seed in range(3):
        worker.generate(GenerationRequest("cat", seed=seed, steps=5), PreviewSettings())
    qtbot.waitUntil(lambda: len(backend.requests) == 1)
    with qtbot.waitSignal(worker.jobCancelled, timeout=5000):
        worker.cancel()
        gate.set()
    qtbot.wait(100)
    assert len(backend.requests) == 1


def test_failures_reach_the_gui_and_the_worker_survives(qtbot, make_worker):
    backend = ScriptedBackend(fail_with="Out of memory at 64x64. Try a smaller size.", failing_paths={"/bad"})
    worker = make_worker(backend)
    with qtbot.waitSignal(worker.modelFailed, timeout=5000) as failed_load:
        worker.load_model("/bad", "auto", "auto")
    assert "not a model" in failed_load.args[0]
    with qtbot.waitSignal(worker.jobFailed, timeout=5000) as failed:
        worker.generate(GenerationRequest("cat", seed=1, steps=2), PreviewSettings())
    assert failed.args[0].startswith("Out of memory")
    backend.fail_with = ""
    with qtbot.waitSignal(worker.jobFinished, timeout=5000):
        worker.generate(GenerationRequest("cat", seed=1, steps=2), PreviewSettings())


def test_a_save_error_keeps_the_images_in_the_session(qtbot, make_worker):
    def full_disk(result):
        raise OSError(28, "No space left on device")

    worker = make_worker(ScriptedBackend(), full_disk)
    worker.load_model("/m", "auto", "auto")
    with qtbot.waitSignal(worker.jobFinished, timeout=5000) as done:
        worker.generate(GenerationRequest("cat", seed=1, steps=2, batch_size=2), PreviewSettings())
    update: FinishedUpdate = done.args[0]
    assert len(update.images) == 2 and update.saved == []
    assert "could not be saved" in update.save_error and "kept in this session" in update.save_error


def test_real_engine_generates_and_saves_reproducible_pngs(qtbot, make_worker, tiny_sd_folder, tmp_path):
    store = GalleryStore(tmp_path / "gallery")
    worker = make_worker(TorchBackend(), lambda result: save_finished(store, result))
    with qtbot.waitSignal(worker.modelLoaded, timeout=60000) as loaded:
        worker.load_model(tiny_sd_folder, "cpu", "auto")
    assert loaded.args[0].device == "CPU" and loaded.args[0].dtype.startswith("float32")
    with qtbot.waitSignal(worker.jobFinished, timeout=60000) as done:
        worker.generate(GenerationRequest("a cat", seed=11, steps=3, batch_size=2), PreviewSettings())
    update: FinishedUpdate = done.args[0]
    assert [path.exists() for path in update.saved_paths] == [True, True]
    seeds = [read_metadata(path).seed for path in update.saved_paths]
    assert seeds == [11, 12]
    # what came back with each path is what the file says: the GUI never needs to read it again
    for saved in update.saved:
        on_disk = read_metadata(saved.path)
        assert (saved.metadata.request, saved.metadata.model_hash) == (on_disk.request, on_disk.model_hash)
        assert saved.metadata.prompt == on_disk.prompt == "a cat"


def test_cancel_before_the_job_starts_still_reports_it_cancelled(qtbot, make_worker):
    gate = threading.Event()
    backend = ScriptedBackend(gate=gate)
    worker = make_worker(backend)
    worker.load_model("/m", "auto", "auto")
    worker.generate(GenerationRequest("first", seed=1, steps=3), PreviewSettings())
    qtbot.waitUntil(lambda: len(backend.requests) == 1)
    worker.generate(GenerationRequest("queued", seed=2, steps=3), PreviewSettings())
    cancelled = []
    worker.jobCancelled.connect(cancelled.append)
    worker.cancel()
    gate.set()
    qtbot.waitUntil(lambda: len(cancelled) == 2)
    assert sorted(event.request.prompt for event in cancelled) == ["first", "queued"]
    assert [request.prompt for request in backend.requests] == ["first"]
