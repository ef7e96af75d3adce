"""LoRA training from the window: one run at a time, on a thread of its own, observed through signals.

Why not the engine worker: it owns the loaded model and runs jobs one at a time, so a training run
there would block every generation for the run's 20+ minutes, and the trainer attaches adapters to
the model it trains (the model generating would change under the user). So the run gets its own
thread and opens its own copy of the base through ``train_lora`` (more memory: a second copy of the
weights), and the studio keeps generating, slower, while it trains. torch's thread count is set
inside that thread (see ``lora_training_plan.to_config``).

Pause and Cancel both stop cooperatively before the next step; the trainer saves its checkpoint,
and ``resume`` continues from it with the settings the run was started with.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Signal
from PySide6.QtGui import QImage

from ldm_studio.app.lora_training_plan import (
    LoraTrainingChoice,
    base_refusal,
    lora_file,
    lora_tag,
    loss_history,
    model_factors,
    name_problem,
    run_folder,
    stopped_run,
    to_config,
    with_lora_tag,
)
from ldm_studio.app.worker import qimage_from_array

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingPlan:
    """A run that is starting: what the progress view shows before the first step."""

    name: str
    base_name: str
    out_file: Path
    run_dir: Path
    total: int
    start_step: int = 0  # > 0 when resumed
    history: tuple[tuple[int, float], ...] = ()  # (step, loss) logged before the resume


@dataclass(frozen=True)
class TrainingProgress:
    step: int
    total: int
    loss: float
    seconds_left: float | None  # None until two steps tell the pace
    sample: QImage | None = None  # rows: a prompt with the LoRA (left half) and without it (right)


@dataclass(frozen=True)
class TrainingStopped:
    """A paused or cancelled run: its checkpoint is kept and ``resume`` continues it."""

    name: str
    step: int
    total: int
    paused: bool


@dataclass(frozen=True)
class FolderReport:
    """``summarise_folder``'s answer for the dialog, or the sentence saying why there is none."""

    folder: Path
    images: int = 0
    captioned: int = 0
    buckets: dict[str, int] = field(default_factory=dict)
    error: str = ""


class LoraTrainingJob(QObject):
    started = Signal(object)  # TrainingPlan
    progress = Signal(object)  # TrainingProgress
    finished = Signal(object)  # Path of the LoRA file
    stopped = Signal(object)  # TrainingStopped
    failed = Signal(str)
    runningChanged = Signal(bool)
    folderSummarised = Signal(object)  # FolderReport

    def __init__(self, session: Any, *, threads: int = -1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.threads = threads
        self.last_plan: TrainingPlan | None = None
        self.last_progress: TrainingProgress | None = None
        self.last_file: Path | None = None
        self._thread: threading.Thread | None = None
        self._active = False  # from start until the run's ending is announced (its thread then returns)
        self._stop = threading.Event()
        self._paused = False
        self._survey_count = 0
        # the run's endings arrive from its thread; these handlers run on this object's (the GUI) thread
        self.finished.connect(self._on_finished)
        self.stopped.connect(self._on_stopped)
        app = QCoreApplication.instance()
        if app is not None:  # closing the studio stops the run and keeps its checkpoint
            app.aboutToQuit.connect(self.shutdown)

    # ---- state -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._active

    def refusal(self) -> str:
        return base_refusal(self.session.model)

    # ---- intents -----------------------------------------------------------------------------
    def start(self, choice: LoraTrainingChoice) -> bool:
        """Start a new run; False (and ``failed``) with a sentence when it cannot start."""
        dirs = self.session.dirs
        problem = self.refusal() or name_problem(choice.name) or self._busy_problem()
        if not problem and lora_file(choice.name, dirs).exists():
            problem = f"A LoRA named {choice.name} exists already: pick another name."
        if not problem and stopped_run(choice.name, dirs) is not None:
            problem = f"{choice.name} has a stopped run: resume it, or pick another name."
        if not problem and not Path(choice.data).is_dir():
            problem = "Pick the folder of images to train on."
        if problem:
            self.failed.emit(problem)
            return False
        self._launch(choice, resume=False)
        return True

    def resume(self, name: str) -> bool:
        """Continue the stopped run of ``name`` with the settings it was started with."""
        run = stopped_run(name, self.session.dirs)
        problem = self.refusal() or self._busy_problem()
        if not problem and run is None:
            problem = f"There is no stopped run of {name} to resume."
        if problem:
            self.failed.emit(problem)
            return False
        self._launch(run.choice, resume=True)
        return True

    def pause(self) -> None:
        self._paused = True
        self._stop.set()

    def cancel(self) -> None:
        self._paused = False
        self._stop.set()

    def try_it(self, name: str | None = None, weight: float = 1.0) -> None:
        """Put ``<lora:name:weight>`` into the prompt being edited (the last finished LoRA by default)."""
        name = name or (self.last_file.stem if self.last_file else "")
        if not name:
            return
        session = self.session
        session.replace_draft(with_lora_tag(session.draft, name, weight), "prompt")
        session.status.emit(f"Added {lora_tag(name, weight)} to the prompt", 6000)

    def summarise(self, folder: Path, resolution: int = 0) -> None:
        """Count images, captions and buckets off the GUI thread; ``folderSummarised`` answers
        (only for the latest folder asked about)."""
        self._survey_count += 1
        ticket, model = self._survey_count, self.session.model
        size = resolution or (model.native_size if model else 512)
        base = (Path(model.path), model.family) if model else (Path(), "sd1")

        def work() -> None:
            report = _survey(Path(folder), size, *base)
            if ticket == self._survey_count:
                self.folderSummarised.emit(report)

        threading.Thread(target=work, name="lora-folder-summary", daemon=True).start()

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop a run (it keeps its checkpoint) and wait for it; True when it ended in time."""
        if self._thread is None or not self._thread.is_alive():
            return True
        self.pause()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ---- the training thread -----------------------------------------------------------------
    def _busy_problem(self) -> str:
        return "A LoRA is training already: wait for it, or pause it first." if self.running else ""

    def _launch(self, choice: LoraTrainingChoice, *, resume: bool) -> None:
        dirs, model = self.session.dirs, self.session.model
        run_dir = run_folder(choice.name, dirs)
        history = tuple(loss_history(run_dir)) if resume else ()
        plan = TrainingPlan(
            name=choice.name,
            base_name=model.name,
            out_file=lora_file(choice.name, dirs),
            run_dir=run_dir,
            total=choice.steps,
            start_step=history[-1][0] if history else 0,
            history=history,
        )
        config = to_config(choice, Path(model.path), dirs, threads=self.threads)
        self._stop.clear()
        self._paused, self._active = False, True
        self.last_plan, self.last_progress, self.last_file = plan, None, None
        self._thread = threading.Thread(
            target=self._train, args=(plan, config, resume), name="lora-training", daemon=True
        )
        self.started.emit(plan)
        self.runningChanged.emit(True)
        self.session.status.emit(f"Training the LoRA {choice.name} on {model.name}…", 6000)
        self._thread.start()

    def _train(self, plan: TrainingPlan, config: Any, resume: bool) -> None:
        from ldm_studio.engine.errors import ModelLoadError
        from ldm_studio.training.lora_training import train_lora

        pace = _Pace()
        last_grid: list[Any] = [None]

        def on_progress(step: int, total: int, loss: float, sample: Any) -> None:
            image = None
            if sample is not None:
                image, last_grid[0] = qimage_from_array(sample), sample
            update = TrainingProgress(step, total, loss, pace.seconds_left(step, total), image)
            self.last_progress = update
            self.progress.emit(update)

        try:
            result = train_lora(config, on_progress, self._stop.is_set, resume=resume)
        except (FileNotFoundError, FileExistsError, ValueError, ModelLoadError) as error:
            self._ended()
            self.failed.emit(str(error))
            return
        except Exception as error:  # the window must hear of anything the trainer raises
            log.exception("LoRA training failed")
            self._ended()
            self.failed.emit(f"Training stopped with an error: {error}")
            return
        self._ended()
        if result.cancelled or result.out_file is None:
            self.stopped.emit(TrainingStopped(plan.name, result.steps_done, result.total_steps, self._paused))
        else:
            if last_grid[0] is not None:
                save_preview(last_grid[0], 2 * config.samples_per_prompt, result.out_file)
            self.last_file = result.out_file
            self.finished.emit(result.out_file)

    def _ended(self) -> None:
        self._active = False
        self.runningChanged.emit(False)

    def _on_finished(self, path: Path) -> None:
        _refresh_network_library(self.session)
        self.session.status.emit(f"Trained {path.stem}: {path}", 10000)

    def _on_stopped(self, stopped: TrainingStopped) -> None:
        what = "Paused" if stopped.paused else "Stopped"
        self.session.status.emit(f"{what} {stopped.name} at step {stopped.step}; Resume continues it", 8000)


class _Pace:
    """Seconds left from the steps of this run so far (sample renders included, as they will recur)."""

    def __init__(self) -> None:
        self.first: tuple[int, float] | None = None

    def seconds_left(self, step: int, total: int) -> float | None:
        now = time.monotonic()
        if self.first is None:  # the first step also paid for loading the base and the cache
            self.first = (step, now)
            return None
        first_step, first_time = self.first
        if step <= first_step:
            return None
        return (now - first_time) / (step - first_step) * (total - step)


def _survey(folder: Path, resolution: int, model_path: Path, family: str) -> FolderReport:
    from ldm_studio.training.buckets import bucket_step
    from ldm_studio.training.lora_data import summarise_folder

    try:
        vae_factor, unet_factor = model_factors(model_path, family)
        step = bucket_step(resolution, vae_factor, unet_factor)
        summary = summarise_folder(folder, max(step, resolution // step * step), step)
    except (OSError, ValueError) as error:
        return FolderReport(folder, error=str(error))
    except Exception as error:  # a malformed metadata.jsonl line, say: the dialog must not wait forever
        log.exception("could not summarise %s", folder)
        return FolderReport(folder, error=f"{folder} cannot be read as training data: {error!r}")
    return FolderReport(folder, summary.images, summary.captioned, dict(summary.buckets))


def save_preview(grid: Any, columns: int, lora: Path, pad: int = 2) -> Path | None:
    """The sample grid's first tile (the first prompt, with the LoRA) as ``name.preview.png`` beside the
    LoRA, where the LoRA picker looks for a thumbnail (A1111's convention). ``pad``: as ``image_grid``."""
    from PIL import Image

    side = (grid.shape[1] - pad) // columns - pad
    if side < 8 or grid.shape[0] < side + pad:
        return None
    path = lora.with_name(f"{lora.stem}.preview.png")
    try:
        Image.fromarray(grid[pad : pad + side, pad : pad + side]).save(path)
    except OSError as error:  # the LoRA itself is written; a missing thumbnail is not worth a failure
        log.warning("could not write %s: %s", path, error)
        return None
    return path


def _refresh_network_library(session: Any) -> None:
    """The LoRA picker lists the new file: refresh the session's network library where it has one."""
    for name in ("networks", "network_library", "loras"):
        library = getattr(session, name, None)
        refresh = getattr(library, "refresh", None)
        if callable(refresh):
            refresh()
            return
