"""A multi-line prompt box that completes from the model's known captions."""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QCompleter, QPlainTextEdit, QWidget

MIN_CHARACTERS_TO_COMPLETE = 2


class PromptEdit(QPlainTextEdit):
    submitted = Signal()  # Ctrl+Enter inside the box

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self._model = QStringListModel(self)
        self._completer = QCompleter(self._model, self)
        self._completer.setWidget(self)
        self._completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self._completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self._completer.setMaxVisibleItems(10)
        self._completer.activated.connect(self._accept_completion)
        self.textChanged.connect(self._update_completion)

    def set_completions(self, phrases: list[str] | tuple[str, ...]) -> None:
        self._model.setStringList(sorted(set(phrases), key=str.lower))

    def completer(self) -> QCompleter:
        return self._completer

    def text(self) -> str:
        return self.toPlainText()

    def set_text(self, text: str) -> None:
        self.setPlainText(text)
        cursor = self.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        self.setTextCursor(cursor)

    def _update_completion(self) -> None:
        text = self.toPlainText().strip()
        if len(text) < MIN_CHARACTERS_TO_COMPLETE or not self.hasFocus() or not self._model.rowCount():
            self._completer.popup().hide()
            return
        self._completer.setCompletionPrefix(text)
        if self._completer.completionCount() == 0 or self._completer.currentCompletion() == text:
            self._completer.popup().hide()
            return
        rect = self.cursorRect()
        rect.setWidth(max(260, self.width() // 2))
        self._completer.complete(rect)

    def _accept_completion(self, phrase: str) -> None:
        self.blockSignals(True)
        self.set_text(phrase)
        self.blockSignals(False)
        self.textChanged.emit()
        self._completer.popup().hide()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        popup = self._completer.popup()
        if popup.isVisible() and event.key() in (
            Qt.Key.Key_Enter,
            Qt.Key.Key_Return,
            Qt.Key.Key_Escape,
            Qt.Key.Key_Tab,
            Qt.Key.Key_Backtab,
        ):
            event.ignore()  # the completer's popup handles these
            return
        enter = event.key() in (Qt.Key.Key_Enter, Qt.Key.Key_Return)
        if enter and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.submitted.emit()
            return
        super().keyPressEvent(event)
