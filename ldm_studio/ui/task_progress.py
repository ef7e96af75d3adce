"""A longer task's progress bar and Cancel button for the status bar, so a task started from the
Gallery (an upscale) is followed and stopped there too; the Create page shows the same progress."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QSizePolicy, QToolButton, QWidget

from ldm_studio.app.jobs import TASK_CONVERT, TASK_EXPORT, TASK_UPSCALE, TASK_WALK
from ldm_studio.app.session import Session

# what the bar says while a task counts: "Upscale: tile 3/12"
TASK_UNITS = {
    TASK_EXPORT: ("Export", "step"),
    TASK_WALK: ("Walk", "frame"),
    TASK_CONVERT: ("Convert", "step"),
    TASK_UPSCALE: ("Upscale", "tile"),
}


def task_progress_text(kind: str, done: int, total: int) -> str:
    name, unit = TASK_UNITS.get(kind, ("Task", "step"))
    return f"{name}: {unit} {done}/{total}"


class TaskProgress(QWidget):
    """Hidden while no task runs."""

    cancelRequested = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("taskProgress")
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)  # Cancel beside the bar
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.bar.setFixedWidth(240)
        self.cancel = QToolButton(text="Cancel")
        self.cancel.setToolTip("Stop this task; nothing is saved (Esc)")
        self.cancel.clicked.connect(self.cancelRequested)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 6, 0)
        row.setSpacing(4)
        row.addWidget(self.bar)
        row.addWidget(self.cancel)
        session.taskStarted.connect(self._started)
        session.taskProgress.connect(self._progress)
        session.taskFinished.connect(lambda _kind, _result: self.hide())
        session.taskFailed.connect(lambda _kind, _message: self.hide())
        self.hide()

    def _started(self, _kind: str, text: str) -> None:
        self.bar.setRange(0, 0)  # busy until the first count arrives (loading the upscaler)
        self.bar.setFormat(text)
        self.cancel.setEnabled(True)
        self.show()

    def _progress(self, kind: str, done: int, total: int, _image: QImage | None) -> None:
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        self.bar.setFormat(task_progress_text(kind, done, total))

    def cancelling(self) -> None:
        self.bar.setFormat("Cancelling…")
        self.cancel.setEnabled(False)
