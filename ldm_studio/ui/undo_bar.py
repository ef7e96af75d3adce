"""A slim bar under the gallery grid: what a delete did, with Undo while it can be undone."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget


class UndoBar(QWidget):
    undoRequested = Signal()
    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("undoBar")
        self.text = QLabel()
        self.undo_button = QToolButton(text="Undo")
        self.undo_button.setObjectName("action")
        self.undo_button.clicked.connect(self._undo)
        dismiss = QToolButton(text="✕")
        dismiss.setObjectName("action")
        dismiss.clicked.connect(self._dismiss)
        row = QHBoxLayout(self)
        row.setContentsMargins(12, 4, 12, 4)
        row.addWidget(self.text)
        row.addStretch(1)
        row.addWidget(self.undo_button)
        row.addWidget(dismiss)
        self.setVisible(False)

    def show_message(self, text: str, visible: bool, can_undo: bool) -> None:
        self.text.setText(text)
        self.undo_button.setVisible(can_undo)
        self.setVisible(visible)

    def _undo(self) -> None:
        self.setVisible(False)
        self.undoRequested.emit()

    def _dismiss(self) -> None:
        self.setVisible(False)
        self.dismissed.emit()
