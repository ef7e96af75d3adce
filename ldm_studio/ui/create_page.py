"""The Create tab: a message banner, the live preview, the denoising timeline, progress and results.

It only shows the session: steps, results, endings and messages come in as the session's signals;
the timeline's "branch" and "export" go out as intents the window passes on.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QVBoxLayout, QWidget

from ldm_studio.app.backend import ModelSummary
from ldm_studio.app.jobs import TASK_CONVERT, TASK_UPSCALE, TASK_WALK, FinishedUpdate, StepUpdate
from ldm_studio.app.prompt_switches import prompt_by_step
from ldm_studio.app.session import Session
from ldm_studio.engine.hires_request import second_pass_start
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.ui.preview_view import PreviewView
from ldm_studio.ui.results_strip import ResultsStrip
from ldm_studio.ui.task_progress import task_progress_text
from ldm_studio.ui.timeline_bar import VIEW_BOTH, VIEW_NOISY, TimelineBar

log = logging.getLogger(__name__)

NO_MODEL = "No model loaded.\nOpen a model folder or checkpoint on the left."


def progress_text(update: StepUpdate) -> str:
    """'Step 7/20 · 3.1 it/s · 4 s left' from what the worker reports."""
    rate = update.index / update.elapsed if update.elapsed > 0 else 0.0
    left = (update.total - update.index) / rate if rate > 0 else 0.0
    speed = f"{rate:.1f} it/s" if rate >= 1 else (f"{1 / rate:.1f} s/it" if rate > 0 else "")
    return f"Step {update.index}/{update.total} · {speed} · {left:.0f} s left"


class CreatePage(QWidget):
    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.preview = PreviewView()
        self.preview.set_message(NO_MODEL)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFormat("Ready")
        self.progress.setValue(0)
        self.results = ResultsStrip()
        self.timeline = TimelineBar()
        self.banner = QLabel()
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner_close = QToolButton()
        self.banner_close.setText("✕")
        self.banner_close.setToolTip("Dismiss")
        self.banner_close.clicked.connect(self.hide_banner)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(8)
        banner_row = QHBoxLayout()
        banner_row.addWidget(self.banner, 1)
        banner_row.addWidget(self.banner_close)
        self.banner_box = QWidget()
        self.banner_box.setObjectName("bannerBox")
        self.banner_box.setLayout(banner_row)
        layout.addWidget(self.banner_box)
        layout.addWidget(self.preview, 1)
        layout.addWidget(self.timeline)
        layout.addWidget(self.progress)
        layout.addWidget(self.results)
        self.hide_banner()
        self._bind()

    def _bind(self) -> None:
        session = self.session
        session.error.connect(self.show_banner)
        session.errorCleared.connect(self.hide_banner)
        session.loadingChanged.connect(self._loading)
        session.modelChanged.connect(self._model_changed)
        session.modelFailed.connect(lambda _message: self._model_changed(session.model))
        session.jobStarted.connect(self._started)
        session.progress.connect(self._step)
        session.resultChanged.connect(self._finished)
        session.jobCancelled.connect(self._cancelled)
        session.jobFailed.connect(self._failed)
        session.taskStarted.connect(self._task_started)
        session.taskProgress.connect(self._task_progress)
        session.taskFinished.connect(self._task_finished)
        session.taskFailed.connect(self._task_failed)
        self.results.imageChosen.connect(self._show_result)
        self.timeline.frameChosen.connect(self._show_frame)
        self.timeline.viewChanged.connect(lambda: self._show_frame(self.timeline.current()))
        self.timeline.stepWanted.connect(session.timeline_decoder.request)  # the true x0, off the GUI thread
        session.timeline_decoder.decoded.connect(self._show_decoded)

    # ---- messages -------------------------------------------------------------------------------
    def show_banner(self, message: str) -> None:
        self.banner.setText(message)
        self.banner_box.show()
        log.info("shown to user: %s", message)

    def hide_banner(self) -> None:
        self.banner_box.hide()

    def banner_text(self) -> str:
        return self.banner.text() if self.banner_box.isVisibleTo(self) else ""

    # ---- the model ------------------------------------------------------------------------------
    def _loading(self, path: str) -> None:
        if path:
            self.preview.set_message(
                f"Loading {Path(path).name}…\nGenerate now and it starts as soon as the model is ready."
            )

    def _model_changed(self, summary: ModelSummary | None) -> None:
        if self.session.loading_path:
            return
        if summary is None:
            self.preview.set_message(NO_MODEL)
        elif self.preview.image() is None:
            self.preview.set_message("Type a prompt and press Ctrl+Enter.")

    # ---- a generation ---------------------------------------------------------------------------
    def _started(self, request: GenerationRequest, kept_steps: int) -> None:
        if kept_steps:
            self.timeline.keep_prefix(kept_steps)
        else:
            self.timeline.clear()
        self.timeline.set_prompt_changes(prompt_by_step(request))
        self.timeline.set_second_pass(second_pass_start(request.steps, request.hires))  # hires fix
        self._started_at = time.perf_counter()
        self.progress.setRange(0, request.steps)
        self.progress.setValue(0)
        self.progress.setFormat(f"Step 0/{request.steps} · starting…")

    def _step(self, update: StepUpdate) -> None:
        self.progress.setRange(0, update.total)
        self.progress.setValue(update.index)
        self.progress.setFormat(progress_text(update))
        self.timeline.add(update)
        if self.timeline.current() is update:
            self._show_frame(update)

    def _finished(self, update: FinishedUpdate) -> None:
        result = update.result
        self.progress.setValue(self.progress.maximum())
        self.progress.setFormat(f"Done in {result.elapsed:.1f} s · seed {result.request.seed}")
        tooltips = [f"seed {result.request.seed_for(i)}" for i in range(len(update.images))]
        self.results.set_images(update.images, tooltips)
        if update.images:
            self.preview.set_image(update.images[0])
        self.timeline.finish()
        if "branch_step" in result.metadata:
            self.progress.setFormat(
                f"Branched from step {result.metadata['branch_step']} · done in {result.elapsed:.1f} s"
            )

    def _cancelled(self) -> None:
        self.progress.setFormat("Cancelled — nothing was saved")
        self.timeline.stopped("Cancelled")

    def _failed(self, _message: str) -> None:
        self.progress.setFormat("Failed")
        self.timeline.stopped("Failed before its first step")

    def cancelling(self) -> None:
        self.progress.setFormat("Cancelling…")

    def _show_frame(self, frame: StepUpdate | None) -> None:
        if frame is None:
            return
        view = self.timeline.view_mode()
        if view == VIEW_BOTH and frame.noisy is not None and frame.image is not None:
            self.preview.set_pair(frame.noisy, frame.image)
        elif view == VIEW_NOISY and frame.noisy is not None:
            self.preview.set_image(frame.noisy)
        elif frame.image is not None:
            self.preview.set_image(frame.image)

    def _show_decoded(self, step: int, image: QImage) -> None:
        """A timeline step's real VAE decode arrived: it replaces the fast preview if still shown."""
        frame = self.timeline.current()
        if not self.timeline.show_decoded(step) or frame is None:
            return
        if self.timeline.view_mode() == VIEW_BOTH and frame.noisy is not None:
            self.preview.set_pair(frame.noisy, image)
        else:
            self.preview.set_image(image)

    def _show_result(self, index: int) -> None:
        image = self.results.image(index)
        if image is not None:
            self.preview.set_image(image)

    def current_result(self) -> int:
        return max(0, self.results.currentRow())

    # ---- longer tasks ---------------------------------------------------------------------------
    def _task_started(self, _kind: str, text: str) -> None:
        self.progress.setRange(0, 0)
        self.progress.setFormat(text)

    def _task_progress(self, kind: str, done: int, total: int, image: QImage | None) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        self.progress.setFormat(task_progress_text(kind, done, total))
        if image is not None:
            self.preview.set_image(image)

    def _task_finished(self, kind: str, _path: object) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        if kind == TASK_CONVERT:
            self.progress.setFormat("Converted")
            return
        if kind == TASK_UPSCALE:
            self.progress.setFormat("Upscaled image saved to the gallery")
            return
        self.progress.setFormat(f"{'Latent walk' if kind == TASK_WALK else 'Timeline'} saved")

    def _task_failed(self, _kind: str, message: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("Cancelled" if not message else "Failed")
