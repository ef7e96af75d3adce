"""The session's longer tasks: timeline export, latent walk, checkpoint conversion and upscaling a
gallery image. Each runs on the worker thread as one task (progress, cancel, one ending).

A mixin of ``Session`` (it uses the session's signals, worker, settings and gallery), kept apart so
the session module stays about the model, the edited request and the generations.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ldm_studio.app.jobs import TASK_CONVERT, TASK_EXPORT, TASK_UPSCALE, TASK_WALK, SavedImage, WalkSpec
from ldm_studio.app.upscale_task import UpscaleJob, UpscalerChoice, upscaler_choices
from ldm_studio.engine.request import GenerationRequest

if TYPE_CHECKING:
    from ldm_studio.app.session import Session

log = logging.getLogger(__name__)


class SessionTasks:
    # ---- timeline export, latent walk, checkpoint conversion ------------------------------------
    def animation_folder(self: Session, kind: str) -> Path:
        root = (
            Path(self.settings.gallery_folder) if self.settings.gallery_folder else self.dirs.default_gallery
        )
        return root / kind

    def suggested_timeline_path(self: Session) -> Path | None:
        if self._branch_source is None:
            return None
        seed = self._branch_source.result.request.seed
        return self.animation_folder("timelines") / f"{time.strftime('%Y%m%d-%H%M%S')}-{seed}"

    def export_timeline(self: Session, path: Path, *, full: bool, fps: float, hold: float) -> bool:
        if self._branch_source is None:
            self.error.emit("Generate an image first: its denoising is what gets exported.")
            return False
        self._start_task(TASK_EXPORT, "Exporting the timeline…")
        self.worker.export_timeline(self._branch_source.result, path, full=full, fps=fps, hold=hold)
        return True

    def walk_start(self: Session) -> GenerationRequest | None:
        """The edited request as a walk's first frame (one image); None with a message if not ready."""
        if self.model is None:
            self.error.emit("Load a model first.")
            return None
        try:
            return self.job_request().replace(model=self.model.path, batch_size=1)
        except ValueError as error:
            self.error.emit(str(error))
            return None

    def walk(self: Session, spec: WalkSpec, path: Path, fps: float) -> None:
        frames_folder = path.with_name(f"{path.stem}_frames")
        self._start_task(TASK_WALK, f"Walking {spec.frames} frames…")
        self.worker.walk(spec, frames_folder, path, fps)

    def convert_checkpoint(self: Session, path: str | Path) -> None:
        self._start_task(TASK_CONVERT, f"Converting {Path(path).name} to .safetensors…")
        self.worker.convert_checkpoint(Path(path))

    def _start_task(self: Session, kind: str, text: str) -> None:
        self.errorCleared.emit()
        self.task_running = kind
        self.runningChanged.emit(True)
        self.taskStarted.emit(kind, text)

    def _end_task(self: Session) -> None:
        self.task_running = ""
        self.runningChanged.emit(self.busy)

    def _on_task_finished(self: Session, kind: str, path: object) -> None:
        self._end_task()
        if kind == TASK_UPSCALE:
            self._add_upscaled(Path(path))
        self.taskFinished.emit(kind, path)
        if kind == TASK_UPSCALE:
            self.status.emit(f"Upscaled image saved as {Path(path).name}", 10000)
            return
        if kind == TASK_CONVERT:
            self.status.emit(f"Wrote {path}; opening it", 10000)
            self.load_model(str(path))
            return
        what = "Latent walk" if kind == TASK_WALK else "Timeline"
        self.status.emit(f"{what} saved to {path}", 10000)

    def _on_task_failed(self: Session, kind: str, message: str) -> None:
        self._end_task()
        self.taskFailed.emit(kind, message)
        if message:
            self.error.emit(message)

    # ---- upscaling a gallery image ----------------------------------------------------------------
    def upscaler_choices(self: Session) -> list[UpscalerChoice]:
        """The built-in resizes and the library's upscaler files, for the Upscale… dialog."""
        try:
            return upscaler_choices()
        except OSError as error:  # an added folder gone unreadable: the built-ins still work
            log.warning("could not list the upscalers: %s", error)
            return upscaler_choices([])

    def upscale_image(self: Session, source: str | Path, upscaler: str, scale: float) -> bool:
        """Enlarge a gallery image ``scale`` times into a new gallery image; False with a message if not."""
        if self.gallery is None:
            self.error.emit("There is no gallery to save the upscaled image in.")
            return False
        if self.task_running:
            self.error.emit("Another task is running: wait for it to end, or cancel it, then upscale.")
            return False
        source = Path(source)
        folder = self.gallery.store.folder_for(datetime.now())
        self._start_task(TASK_UPSCALE, f"Upscaling {source.name} ×{scale:g}…")
        self.worker.upscale(UpscaleJob(source, upscaler, float(scale), folder, self.placement[0]))
        return True

    def _add_upscaled(self: Session, path: Path) -> None:
        from ldm_studio.gallery.metadata import read_metadata

        if self.gallery is None:
            return
        try:
            self.gallery.add_saved([SavedImage(path, read_metadata(path))])
        except ValueError as error:
            self.error.emit(f"The upscaled image was saved but cannot be shown in the gallery: {error}")
