"""Create → "Train a LoRA…": pick a folder, check a few settings, watch it train, try the result.

A non-modal window over a ``LoraTrainingJob`` (app layer): the settings page sends it a choice, the
progress page shows what it reports. Closing the window (it only hides) does not stop a run; opening
it again shows the run, or offers to resume a stopped one whose name is picked again.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QLocale, Qt
from PySide6.QtGui import QDoubleValidator
from PySide6.QtWidgets import (
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.lora_training_job import FolderReport, LoraTrainingJob, TrainingStopped
from ldm_studio.app.lora_training_plan import (
    FAMILY_NAMES,
    LoraTrainingChoice,
    free_name,
    lora_file,
    name_problem,
    stopped_run,
    suggested_choice,
)
from ldm_studio.ui.lora_advanced_fold import LoraAdvancedFold, spin_box
from ldm_studio.ui.training_progress import TrainingProgressView

DEFAULT_NAME = "my-style"


def folder_summary_text(report: FolderReport) -> str:
    if report.error:
        return report.error
    buckets = sorted(report.buckets.items(), key=lambda item: -item[1])
    shapes = ", ".join(f"{size.replace('x', '×')} ({count})" for size, count in buckets[:4])
    more = f" and {len(buckets) - 4} more" if len(buckets) > 4 else ""
    captions = (
        "all with captions" if report.captioned == report.images else f"{report.captioned} with captions"
    )
    return f"{report.images} images, {captions} · buckets {shapes}{more}"


class TrainLoraDialog(QDialog):
    def __init__(self, job: LoraTrainingJob, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job, self.session = job, job.session
        self.setWindowTitle("Train a LoRA")
        self.setModal(False)
        self._name_edited = False
        self._report: FolderReport | None = None
        self.pages = QStackedWidget()
        self.pages.addWidget(self._settings_page())
        self.progress_view = TrainingProgressView()
        self.pages.addWidget(self.progress_view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 16, 16, 16)
        layout.addWidget(self.pages)
        self._bind()
        self.show_model(self.session.model)
        self.resize(620, 640)

    # ---- the settings page ---------------------------------------------------------------------
    def _settings_page(self) -> QWidget:
        page = QWidget()
        intro = QLabel(
            "Teach the loaded model a style or a subject from a folder of images. Captions come from "
            "same-name .txt files or metadata.jsonl; images of any shape are sorted into aspect buckets."
        )
        intro.setWordWrap(True)
        intro.setObjectName("hint")
        self.base_label = QLabel()
        self.base_label.setWordWrap(True)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("a folder of images with captions")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        self.summary_label = QLabel("No folder yet.")
        self.summary_label.setObjectName("hint")
        self.summary_label.setWordWrap(True)
        self.name_edit = QLineEdit()
        self.file_label = QLabel()
        self.file_label.setObjectName("hint")
        self.file_label.setWordWrap(True)
        self.steps = spin_box(1, 100_000, 1000, 50)
        self.rank = spin_box(1, 256, 8)
        self.learning_rate = QLineEdit()
        rate_validator = QDoubleValidator(1e-8, 1.0, 8)
        rate_validator.setLocale(QLocale.c())  # "1e-4" and "0.001" in every locale
        self.learning_rate.setValidator(rate_validator)
        self.trigger = QLineEdit()
        self.trigger.setPlaceholderText("optional: a word put first in every caption")
        self.resolution = spin_box(0, 2048, 0, 64)

        form = QFormLayout()
        form.addRow("Images", folder_row)
        form.addRow("", self.summary_label)
        form.addRow("Name", self.name_edit)
        form.addRow("", self.file_label)
        form.addRow("Steps", self.steps)
        form.addRow("Rank", self.rank)
        form.addRow("Learning rate", self.learning_rate)
        form.addRow("Trigger word", self.trigger)
        form.addRow("Resolution", self.resolution)

        self.advanced = LoraAdvancedFold()
        self.advanced_button = self.advanced.toggle_button

        self.resume_banner = QWidget()
        self.resume_banner.setObjectName("bannerBox")
        self.resume_text = QLabel()
        self.resume_text.setWordWrap(True)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(lambda: self.job.resume(self.name_edit.text().strip()))
        banner = QHBoxLayout(self.resume_banner)
        banner.addWidget(self.resume_text, 1)
        banner.addWidget(self.resume_button)
        self.resume_banner.hide()

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #ff9b93;")
        self.start_button = QPushButton("Start training")
        self.start_button.setObjectName("primary")
        self.start_button.clicked.connect(self.start)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(close)
        buttons.addWidget(self.start_button)

        layout = QVBoxLayout(page)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(intro)
        layout.addWidget(self.base_label)
        layout.addLayout(form)
        layout.addWidget(self.advanced_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.advanced)
        layout.addStretch(1)
        layout.addWidget(self.resume_banner)
        layout.addWidget(self.message)
        layout.addLayout(buttons)
        return page

    # ---- bindings ------------------------------------------------------------------------------
    def _bind(self) -> None:
        job, view = self.job, self.progress_view
        self.folder_edit.editingFinished.connect(self._folder_changed)
        self.resolution.valueChanged.connect(lambda _value: self._folder_changed())
        self.name_edit.textEdited.connect(lambda _text: setattr(self, "_name_edited", True))
        self.name_edit.textChanged.connect(lambda _text: self._name_changed())
        job.folderSummarised.connect(self.show_folder)
        job.started.connect(self._started)
        job.progress.connect(view.show_progress)
        job.stopped.connect(self._stopped)
        job.finished.connect(view.show_finished)
        job.failed.connect(self._failed)
        self.session.modelChanged.connect(self.show_model)
        view.pauseRequested.connect(self._pause)
        view.cancelRequested.connect(self._cancel)
        view.resumeRequested.connect(job.resume)
        view.tryRequested.connect(job.try_it)
        view.backRequested.connect(self.show_settings)

    def show_model(self, model: object) -> None:
        """The base is the loaded model: shown, or refused in a sentence; the defaults follow it."""
        refusal = self.job.refusal()
        if refusal:
            self.base_label.setText(refusal)
            self.base_label.setStyleSheet("color: #ff9b93;")
        else:
            family = FAMILY_NAMES.get(model.family, model.family)
            self.base_label.setText(f"Base model: <b>{model.name}</b> · {family} · {model.native_size} px")
            self.base_label.setStyleSheet("")
        self.resolution.setSpecialValueText(f"native ({model.native_size} px)" if model else "native")
        self.advanced.allow_text_encoder(model is None or model.family != "ldm-studio")
        if not self.job.running:
            self.fill(suggested_choice(Path(self.folder_edit.text()), self._default_name(), model))
        self._update_start()

    def fill(self, choice: LoraTrainingChoice) -> None:
        self.name_edit.setText(choice.name)
        self.steps.setValue(choice.steps)
        self.rank.setValue(choice.rank)
        self.learning_rate.setText(f"{choice.learning_rate:g}")
        self.trigger.setText(choice.trigger)
        self.resolution.setValue(choice.resolution)
        self.advanced.fill(choice)

    def choice(self) -> LoraTrainingChoice:
        try:
            rate = float(self.learning_rate.text())
        except ValueError:
            rate = 0.0
        chosen = LoraTrainingChoice(
            data=Path(self.folder_edit.text().strip()).expanduser(),
            name=self.name_edit.text().strip(),
            steps=self.steps.value(),
            rank=self.rank.value(),
            learning_rate=rate,
            trigger=self.trigger.text().strip(),
            resolution=self.resolution.value(),
        )
        return self.advanced.applied_to(chosen)

    # ---- intents -------------------------------------------------------------------------------
    def set_folder(self, folder: Path) -> None:
        self.folder_edit.setText(str(folder))
        self._folder_changed()

    def start(self) -> None:
        choice = self.choice()
        if choice.learning_rate <= 0:
            self.message.setText("Type a learning rate above 0, such as 1e-4.")
            return
        self.message.setText("")
        self.job.start(choice)

    def show_settings(self) -> None:
        self.pages.setCurrentIndex(0)
        if self.job.last_file is not None and not self._name_edited:
            self.name_edit.setText(self._default_name())
        self._name_changed()

    def show_folder(self, report: FolderReport) -> None:
        if Path(self.folder_edit.text().strip()).expanduser() != report.folder:
            return  # an answer about a folder the field no longer names
        self._report = report
        self.summary_label.setText(folder_summary_text(report))
        self._update_start()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Images to train on", self.folder_edit.text())
        if folder:
            self.set_folder(Path(folder))

    def _folder_changed(self) -> None:
        text = self.folder_edit.text().strip()
        self._report = None
        if not text:
            self.summary_label.setText("No folder yet.")
        else:
            self.summary_label.setText("Counting the images…")
            self.job.summarise(Path(text).expanduser(), self.resolution.value())
            if not self._name_edited and not self.job.running:
                self.name_edit.setText(self._default_name())
        self._update_start()

    def _default_name(self) -> str:
        text = self.folder_edit.text().strip()
        stem = Path(text).name if text else DEFAULT_NAME
        stem = (
            "".join(char if char.isalnum() or char in "-_." else "-" for char in stem).strip("-.") or "lora"
        )
        return free_name(stem, self.session.dirs)

    def _name_changed(self) -> None:
        name = self.name_edit.text().strip()
        problem = name_problem(name)
        self.file_label.setText(problem or f"→ {lora_file(name, self.session.dirs)}")
        run = None if problem else stopped_run(name, self.session.dirs)
        self.resume_banner.setVisible(run is not None)
        if run is not None:
            images = run.choice.data.name or "its folder"
            self.resume_text.setText(
                f"{name} has a stopped run at step {run.step} of {run.total}. Resume continues it with "
                f"its own settings (rank {run.choice.rank}, images from {images})."
            )
        self._update_start()

    def _update_start(self) -> None:
        name = self.name_edit.text().strip()
        ready = (
            not self.job.refusal()
            and not name_problem(name)
            and not self.resume_banner.isVisible()
            and self._report is not None
            and not self._report.error
            and not self.job.running
        )
        self.start_button.setEnabled(ready)
        self.resume_button.setEnabled(not self.job.refusal() and not self.job.running)

    def _started(self, plan: object) -> None:
        self.message.setText("")
        self.progress_view.start(plan)
        self.pages.setCurrentIndex(1)

    def _pause(self) -> None:
        self.progress_view.stopping()
        self.job.pause()

    def _cancel(self) -> None:
        self.progress_view.stopping()
        self.job.cancel()

    def _stopped(self, stopped: TrainingStopped) -> None:
        if stopped.paused:
            self.progress_view.show_stopped(stopped)
            return
        self.name_edit.setText(stopped.name)
        self.show_settings()  # the banner there offers Resume

    def _failed(self, message: str) -> None:
        if self.pages.currentIndex() == 1:
            name = self.progress_view.plan.name if self.progress_view.plan else ""
            can_resume = bool(name) and stopped_run(name, self.session.dirs) is not None
            self.progress_view.show_failed(message, can_resume=can_resume)
        else:
            self.message.setText(message)
        self._update_start()


def show_train_lora_dialog(window: QWidget) -> TrainLoraDialog:
    """The window's one "Train a LoRA…" dialog (made on first use, with its job), shown and raised."""
    dialog = window.findChild(TrainLoraDialog)
    if dialog is None:
        job = LoraTrainingJob(window.session, parent=window)
        dialog = TrainLoraDialog(job, window)
    elif not dialog.job.running and dialog.pages.currentIndex() == 0:
        dialog._name_changed()  # a run may have stopped or finished elsewhere since
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog
