"""The one long-lived worker thread that owns the loaded model and runs jobs one at a time.

The GUI thread only enqueues jobs and receives Qt signals (queued across threads automatically);
it never waits on the worker. Preview images are turned into QImage here, off the GUI thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from ldm_studio.app.backend import Backend
from ldm_studio.app.jobs import (
    TASK_CONVERT,
    TASK_EXPORT,
    TASK_UPSCALE,
    TASK_WALK,
    BranchPoint,
    FinishedUpdate,
    SavedImage,
    StepUpdate,
    WalkSpec,
)
from ldm_studio.app.timeline_decode import StepDecodeSlot, run_step_decode
from ldm_studio.app.upscale_task import UpscaleJob, run_upscale
from ldm_studio.engine.errors import CancelledError, ModelLoadError
from ldm_studio.engine.events import Cancelled, Event, Failed, Finished, Started, Step
from ldm_studio.engine.preview_settings import PreviewSettings
from ldm_studio.engine.request import GenerationRequest

log = logging.getLogger(__name__)

__all__ = ["EngineWorker", "FinishedUpdate", "StepUpdate", "qimage_from_array", "qimage_from_pil"]

Saver = Callable[[Finished], list[SavedImage]]
TaskProgress = Callable[..., None]  # (done, total, image: QImage | None = None)
TaskRun = Callable[[Backend, TaskProgress, Callable[[], bool]], Path]


@dataclass(frozen=True)
class _LoadJob:
    path: Path
    device: str
    dtype: str


@dataclass(frozen=True)
class _GenerateJob:
    request: GenerationRequest
    preview: PreviewSettings
    stop: threading.Event
    branch: BranchPoint | None = None
    epoch: int = 0  # the cancel count when it was queued: a later cancel covers it


@dataclass(frozen=True)
class _TaskJob:
    """Longer work that is not one generation: timeline export, latent walk, checkpoint conversion."""

    kind: str  # TASK_EXPORT | TASK_WALK | TASK_CONVERT
    run: TaskRun
    stop: threading.Event
    epoch: int = 0


_SHUTDOWN = object()
_DECODE_STEP = object()  # "decode the slot's last wish" (app.timeline_decode)


def qimage_from_array(array: np.ndarray) -> QImage:
    """An H x W x 3 uint8 array as a QImage that owns its memory."""
    height, width, _ = array.shape
    data = array.tobytes()
    return QImage(data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


def qimage_from_pil(image: Image.Image) -> QImage:
    return qimage_from_array(np.asarray(image.convert("RGB")))


class EngineWorker(QObject):
    modelLoading = Signal(str)
    modelInspected = Signal(object)  # ModelPreview: what it is, before the weights load
    modelLoaded = Signal(object)  # ModelSummary
    modelFailed = Signal(str)
    modelUnloaded = Signal()  # a failed switch left no model loaded (the previous could not come back)
    jobStarted = Signal(object)  # the resolved GenerationRequest (seed and size known)
    jobStep = Signal(object)  # StepUpdate
    jobFinished = Signal(object)  # FinishedUpdate
    jobCancelled = Signal(object)  # engine.events.Cancelled
    jobFailed = Signal(str)
    busyChanged = Signal(bool)
    taskProgress = Signal(str, int, int, object)  # kind, done, total, QImage | None
    taskFinished = Signal(str, object)  # kind, result (a path)
    taskFailed = Signal(str, str)  # kind, message ("" when cancelled)
    stepDecoded = Signal(object, int, object)  # Finished, real step, QImage (app.timeline_decode)

    def __init__(
        self,
        backend_factory: Callable[[], Backend],
        save_results: Saver | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._backend_factory = backend_factory
        self._save_results = save_results
        self._jobs: queue.Queue = queue.Queue()
        self._current_stop: threading.Event | None = None
        self._cancels = 0  # how many times cancel was pressed; jobs queued before a cancel are stopped
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="engine-worker", daemon=True)
        self._started = False
        self._step_decodes = StepDecodeSlot()

    # ---- GUI-thread API -------------------------------------------------------------------------
    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def load_model(self, path: Path | str, device: str = "auto", dtype: str = "auto") -> None:
        self.start()
        self._jobs.put(_LoadJob(Path(path), device, dtype))

    def generate(
        self, request: GenerationRequest, preview: PreviewSettings, branch: BranchPoint | None = None
    ) -> None:
        """Queue a generation; with ``branch``, continue that finished result from its step."""
        self.start()
        with self._lock:
            self._jobs.put(_GenerateJob(request, preview, threading.Event(), branch, self._cancels))

    def export_timeline(self, finished: Finished, path: Path, *, full: bool, fps: float, hold: float) -> None:
        def run(backend: Backend, progress: TaskProgress, should_stop: Callable[[], bool]) -> Path:
            return backend.export_timeline(
                finished,
                Path(path),
                full=full,
                fps=fps,
                hold=hold,
                on_progress=progress,
                should_stop=should_stop,
            )

        self._put_task(TASK_EXPORT, run)

    def walk(self, walk: WalkSpec, folder: Path, out: Path, fps: float) -> None:
        def run(backend: Backend, progress: TaskProgress, should_stop: Callable[[], bool]) -> Path:
            def frame(index: int, total: int, image: Image.Image) -> None:
                progress(index, total, qimage_from_pil(image))

            return backend.walk(
                walk, Path(folder), Path(out), fps=fps, on_frame=frame, should_stop=should_stop
            )

        self._put_task(TASK_WALK, run)

    def convert_checkpoint(self, path: Path) -> None:
        """Write a .safetensors copy of a .ckpt that loads safely (weights_only)."""

        def run(backend: Backend, progress: TaskProgress, should_stop: Callable[[], bool]) -> Path:
            from ldm_studio.engine.checkpoints import convert_ckpt_to_safetensors

            return convert_ckpt_to_safetensors(Path(path))

        self._put_task(TASK_CONVERT, run)

    def upscale(self, job: UpscaleJob) -> None:
        """Enlarge a gallery image into a new PNG (app.upscale_task); the task's result is its path."""
        self._put_task(
            TASK_UPSCALE, lambda _backend, progress, should_stop: run_upscale(job, progress, should_stop)
        )

    def decode_step(self, finished: Finished, step: int) -> None:
        """Decode ``step`` of ``finished`` with the real VAE; of many asked quickly, only the last runs."""
        self.start()
        if self._step_decodes.want(finished, step):
            self._jobs.put(_DECODE_STEP)

    def drop_step_decodes(self) -> None:
        self._step_decodes.drop()

    def _put_task(self, kind: str, run: TaskRun) -> None:
        self.start()
        with self._lock:
            self._jobs.put(_TaskJob(kind, run, threading.Event(), self._cancels))

    def cancel(self) -> None:
        """Stop the running generation within one step and drop queued ones."""
        with self._lock:
            self._cancels += 1
            if self._current_stop is not None:
                self._current_stop.set()
        self._drop_pending_generations()

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Cancel everything and stop the thread; True when it ended within ``timeout`` seconds."""
        if not self._started:
            return True
        self.cancel()
        self._jobs.put(_SHUTDOWN)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def is_alive(self) -> bool:
        return self._thread.is_alive()

    # ---- worker thread --------------------------------------------------------------------------
    def _drop_pending_generations(self) -> None:
        kept = []
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if isinstance(job, _GenerateJob):
                # a job cancelled before it started still ends, so the GUI is never left waiting
                self.jobCancelled.emit(Cancelled(job.request, 0))
            elif isinstance(job, _TaskJob):
                self.taskFailed.emit(job.kind, "")
            else:
                kept.append(job)
        for job in kept:
            self._jobs.put(job)

    def _run(self) -> None:
        backend = None
        while True:
            job = self._jobs.get()
            if isinstance(job, _GenerateJob | _TaskJob):
                # A cancel pressed between taking the job and starting it must still reach it.
                with self._lock:
                    self._current_stop = job.stop
                    if job.epoch < self._cancels:
                        job.stop.set()
            if job is _SHUTDOWN:
                break
            try:
                if backend is None:
                    backend = self._backend_factory()
                self.busyChanged.emit(True)
                if job is _DECODE_STEP:
                    decode, emit = backend.decode_step, self.stepDecoded.emit
                    run_step_decode(self._step_decodes, decode, qimage_from_array, emit)
                elif isinstance(job, _LoadJob):
                    self._load(backend, job)
                elif isinstance(job, _TaskJob):
                    self._task(backend, job)
                else:
                    self._generate(backend, job)
            except Exception as error:  # the worker must survive anything a job does
                log.exception("worker job failed")
                self.jobFailed.emit(f"Unexpected error: {error}")
            finally:
                self.busyChanged.emit(False)
        if backend is not None:
            backend.unload()

    def _load(self, backend: Backend, job: _LoadJob) -> None:
        self.modelLoading.emit(str(job.path))
        before = backend.current()
        try:
            preview = backend.inspect(job.path)
            if preview is not None:
                self.modelInspected.emit(preview)
            summary = backend.load(job.path, job.device, job.dtype)
        except Exception as error:
            from_engine = isinstance(error, ModelLoadError)
            message = str(error) if from_engine else f"Could not load {job.path.name}: {error}"
            log.error("model load failed: %s\n%s", message, traceback.format_exc())
            after = backend.current()
            if after is None:
                if before is not None:
                    message += f" {before.name} could not be loaded again either: open a model."
                self.modelUnloaded.emit()
            elif after is not before:
                self.modelLoaded.emit(after)  # the previous model, loaded again after the failure
                message += f" Still using {after.name}."
            self.modelFailed.emit(message)
            return
        self.modelLoaded.emit(summary)

    def _generate(self, backend: Backend, job: _GenerateJob) -> None:
        with self._lock:
            self._current_stop = job.stop
        try:
            result = backend.generate(job.request, self._forward, job.stop.is_set, job.preview, job.branch)
        finally:
            with self._lock:
                self._current_stop = None
        match result:
            case Finished():
                if job.branch is not None and job.branch.parent_image:
                    result.metadata["parent_image"] = job.branch.parent_image
                saved, save_error = self._save(result)
                images = [qimage_from_pil(image) for image in result.images]
                self.jobFinished.emit(FinishedUpdate(images, result, saved, save_error))
            case Cancelled():
                self.jobCancelled.emit(result)
            case Failed():
                log.error("generation failed: %s\n%s", result.message, result.detail)
                self.jobFailed.emit(result.message)

    def _task(self, backend: Backend, job: _TaskJob) -> None:
        with self._lock:
            self._current_stop = job.stop

        def progress(done: int, total: int, image: QImage | None = None) -> None:  # a TaskProgress
            self.taskProgress.emit(job.kind, done, total, image)

        try:
            result = job.run(backend, progress, job.stop.is_set)
        except Exception as error:
            cancelled = isinstance(error, CancelledError) or job.stop.is_set()
            if not cancelled:
                log.error("%s failed: %s", job.kind, error, exc_info=True)
            self.taskFailed.emit(job.kind, "" if cancelled else str(error))
            return
        finally:
            with self._lock:
                self._current_stop = None
        self.taskFinished.emit(job.kind, result)

    def _save(self, result: Finished) -> tuple[list[SavedImage], str]:
        if self._save_results is None:
            return [], ""
        try:
            return list(self._save_results(result)), ""
        except OSError as error:
            log.error("could not save images: %s", error, exc_info=True)
            return [], (
                f"The images could not be saved ({error}). They are kept in this session: "
                "use File → Save image as… to save them elsewhere."
            )

    def _forward(self, event: Event) -> None:
        match event:
            case Started():
                self.jobStarted.emit(event.request)
            case Step():
                image = qimage_from_array(event.preview) if event.preview is not None else None
                noisy = qimage_from_array(event.noisy) if event.noisy is not None else None
                self.jobStep.emit(
                    StepUpdate(
                        event.index, event.total, event.elapsed, event.timestep, event.sigma, image, noisy
                    )
                )
            case _:
                pass  # the endings arrive as generate's return value, handled in _generate
