"""A multi-line prompt box that completes from the model's known captions and colours A1111 syntax."""

from __future__ import annotations

from PySide6.QtCore import QStringListModel, Qt, Signal
from PySide6.QtGui import QColor, QFocusEvent, QFont, QKeyEvent, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import QCompleter, QPlainTextEdit, QWidget

from ldm_studio.app.prompt_text import highlights, insertion

MIN_CHARACTERS_TO_COMPLETE = 2
# Stronger emphasis warms towards amber, weaker cools towards grey-blue; tags are the accent colour.
STRONGER, WEAKER, NETWORK = QColor("#ffc46b"), QColor("#8fa3c8"), QColor("#9db4ff")


def _format(colour: QColor, *, bold: bool = False, background: str = "") -> QTextCharFormat:
    text_format = QTextCharFormat()
    text_format.setForeground(colour)
    if bold:
        text_format.setFontWeight(QFont.Weight.DemiBold)
    if background:
        text_format.setBackground(QColor(background))
    return text_format


def qt_index(text: str, index: int) -> int:
    """A Python string index as a Qt text position (Qt counts UTF-16 units: an emoji is two)."""
    return len(text[:index].encode("utf-16-le")) // 2


def python_index(text: str, position: int) -> int:
    return len(text.encode("utf-16-le")[: 2 * position].decode("utf-16-le", errors="ignore"))


class PromptHighlighter(QSyntaxHighlighter):
    """Emphasis ``(word:1.2)`` / ``[word]`` and ``<lora:…>`` tags in colour (A1111's reading of the text)."""

    FORMATS = {
        "stronger": _format(STRONGER),
        "stronger+": _format(STRONGER, bold=True),
        "weaker": _format(WEAKER),
        "network": _format(NETWORK, background="#27304a"),
    }

    def highlightBlock(self, text: str) -> None:  # noqa: N802 (Qt API)
        # The whole box is parsed (brackets may span lines); each block colours its own slice.
        document = self.document()
        block = self.currentBlock()
        offset = block.position()
        full = document.toPlainText() if document is not None else text
        for span in highlights(full):
            qt_start, qt_end = qt_index(full, span.start), qt_index(full, span.end)
            start, end = max(qt_start, offset), min(qt_end, offset + len(text.encode("utf-16-le")) // 2)
            if start >= end:
                continue
            kind = "stronger+" if span.kind == "stronger" and span.weight >= 1.3 else span.kind
            self.setFormat(start - offset, end - start, self.FORMATS[kind])


class PromptEdit(QPlainTextEdit):
    submitted = Signal()  # Ctrl+Enter inside the box
    focused = Signal()  # the box got the keyboard focus (the picker inserts into the last one)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTabChangesFocus(True)
        self.highlighter = PromptHighlighter(self.document())
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

    def insert_phrase(self, phrase: str) -> None:
        """Insert at the cursor with A1111's comma separators, as one undoable edit."""
        full = self.toPlainText()
        here = python_index(full, self.textCursor().position())
        position, text = insertion(full, here, phrase)
        self.replace_range(position, here, text)  # only blanks lie between the two
        cursor = self.textCursor()
        cursor.setPosition(qt_index(self.toPlainText(), position + len(text)))
        self.setTextCursor(cursor)

    def replace_range(self, start: int, end: int, text: str) -> None:
        """Replace characters ``start:end`` (a tag's weight, a removed tag), keeping the undo history."""
        full = self.toPlainText()
        cursor = self.textCursor()
        keep = python_index(full, cursor.position())
        cursor.setPosition(qt_index(full, start))
        cursor.setPosition(qt_index(full, end), cursor.MoveMode.KeepAnchor)
        cursor.insertText(text)
        if keep >= end:
            keep += len(text) - (end - start)
        elif keep > start:
            keep = start + len(text)
        updated = self.toPlainText()
        cursor.setPosition(qt_index(updated, min(max(keep, 0), len(updated))))
        self.setTextCursor(cursor)

    def focusInEvent(self, event: QFocusEvent) -> None:  # noqa: N802 (Qt API)
        super().focusInEvent(event)
        self.focused.emit()

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
