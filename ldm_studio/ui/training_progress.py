"""The progress view of "Train a LoRA…": step N/M, time left, the loss curve, the latest samples, and the
buttons for what can be done now (pause/cancel while it runs, resume when stopped, try it when done)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.lora_training_job import TrainingPlan, TrainingProgress, TrainingStopped
from ldm_studio.app.lora_training_plan import lora_tag
from ldm_studio.ui.loss_curve import LossCurve

SAMPLE_HEIGHT = 200  # on screen; the trainer's grids are upscaled 128 px tiles


def time_left_text(seconds: float | None) -> str:
    if seconds is None:
        return "estimating the time left…"
    if seconds < 60:
        return "less than a minute left"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"about {minutes} min left"
    return f"about {minutes / 60:.1f} h left"


class TrainingProgressView(QWidget):
    pauseRequested = Signal()
    cancelRequested = Signal()
    resumeRequested = Signal(str)  # the run's name
    tryRequested = Signal(str)  # the LoRA's name
    backRequested = Signal()  # to the settings, for another run

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plan: TrainingPlan | None = None
        self.title = QLabel("TRAINING A LORA")
        self.title.setObjectName("heading")
        self.subtitle = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.pace_label = QLabel()
        self.pace_label.setObjectName("hint")
        self.curve = LossCurve()
        self.sample_label = QLabel("Sample images appear here as the trainer makes them.")
        self.sample_label.setObjectName("hint")
        self.sample_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.sample_label.setMinimumHeight(SAMPLE_HEIGHT)
        self.sample_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.sample_caption = QLabel()
        self.sample_caption.setObjectName("hint")
        self.sample_caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.pause_button = QPushButton("Pause")
        self.cancel_button = QPushButton("Cancel")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setObjectName("primary")
        self.try_button = QPushButton("Try it")
        self.try_button.setObjectName("primary")
        self.back_button = QPushButton("New run…")
        self.pause_button.setToolTip("Stop after this step and keep the checkpoint: Resume continues")
        self.cancel_button.setToolTip(
            "Stop after this step; the checkpoint stays, so the run can resume later"
        )
        self.pause_button.clicked.connect(self.pauseRequested)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.resume_button.clicked.connect(lambda: self.resumeRequested.emit(self._name()))
        self.try_button.clicked.connect(lambda: self.tryRequested.emit(self._name()))
        self.back_button.clicked.connect(self.backRequested)

        buttons = QHBoxLayout()
        buttons.addWidget(self.back_button)
        buttons.addStretch(1)
        for button in (self.pause_button, self.cancel_button, self.resume_button, self.try_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.pace_label)
        layout.addWidget(self.curve, 1)
        layout.addWidget(self.sample_label)
        layout.addWidget(self.sample_caption)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        self._show_buttons("idle")

    # ---- what the job says ---------------------------------------------------------------------
    def start(self, plan: TrainingPlan) -> None:
        self.plan = plan
        resumed = f" · resumed at step {plan.start_step}" if plan.start_step else ""
        self.subtitle.setText(f"<b>{plan.name}</b> on {plan.base_name}{resumed}")
        self.progress_bar.setRange(0, plan.total)
        self.progress_bar.setValue(plan.start_step)
        self.progress_bar.setFormat(f"step {plan.start_step} / {plan.total}")
        self.pace_label.setText("Preparing: opening the base model and encoding the images once…")
        self.curve.reset(plan.total, plan.history)
        self.message.setText("")
        self._show_buttons("running")

    def show_progress(self, update: TrainingProgress) -> None:
        self.progress_bar.setRange(0, update.total)
        self.progress_bar.setValue(update.step)
        self.progress_bar.setFormat(f"step {update.step} / {update.total}")
        self.pace_label.setText(f"loss {update.loss:.4f} · {time_left_text(update.seconds_left)}")
        self.curve.add(update.step, update.loss)
        if update.sample is not None:
            pixmap = QPixmap.fromImage(update.sample)
            if pixmap.height() > SAMPLE_HEIGHT:
                pixmap = pixmap.scaledToHeight(SAMPLE_HEIGHT, Qt.TransformationMode.SmoothTransformation)
            self.sample_label.setPixmap(pixmap)
            self.sample_caption.setText(
                f"step {update.step} · each row one prompt and seed · left: with the LoRA · right: without it"
            )

    def stopping(self) -> None:
        self.pace_label.setText("Stopping after this step and saving the checkpoint…")
        self.pause_button.setEnabled(False)
        self.cancel_button.setEnabled(False)

    def show_stopped(self, stopped: TrainingStopped) -> None:
        self.message.setText(
            f"Paused at step {stopped.step} of {stopped.total}. The checkpoint is kept: Resume continues "
            "from it, now or after closing this window."
        )
        self.pace_label.setText("")
        self._show_buttons("stopped")

    def show_finished(self, path: Path) -> None:
        self.progress_bar.setValue(self.progress_bar.maximum())
        self.pace_label.setText("")
        self.message.setText(
            f"Done. {path.name} is in the LoRA folder ({path.parent}). “Try it” adds "
            f"{lora_tag(path.stem)} to the prompt."
        )
        self._show_buttons("finished")

    def show_failed(self, message: str, *, can_resume: bool) -> None:
        self.message.setText(message)
        self.pace_label.setText("")
        self._show_buttons("stopped" if can_resume else "idle")

    # ---- helpers -------------------------------------------------------------------------------
    def _name(self) -> str:
        return self.plan.name if self.plan else ""

    def _show_buttons(self, state: str) -> None:
        running = state == "running"
        self.pause_button.setVisible(running)
        self.cancel_button.setVisible(running)
        self.pause_button.setEnabled(running)
        self.cancel_button.setEnabled(running)
        self.resume_button.setVisible(state == "stopped")
        self.try_button.setVisible(state == "finished")
        self.back_button.setVisible(not running)
