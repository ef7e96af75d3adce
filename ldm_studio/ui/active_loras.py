"""The LoRAs the prompt uses, one row each: a weight slider, its trigger words, a remove button.

The prompt text is the truth (A1111's ``<lora:name:weight>`` tags): the rows are rebuilt from it, and
moving a slider asks for the tag to be rewritten. Nothing here knows the session.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.prompt_text import WEIGHT_RANGE, PromptLora

SLIDER_STEPS_PER_UNIT = 20  # 0.05 per step, A1111's usual granularity
SLIDER_RANGE = (-1.0, 2.0)  # the slider's reach; the box takes WEIGHT_RANGE


class LoraRow(QWidget):
    weightChanged = Signal(float)
    removeRequested = Signal()
    wordChosen = Signal(str)

    def __init__(self, tag: PromptLora, words: tuple[str, ...], problem: str, parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.setObjectName("loraRow")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.name = tag.name
        self.label = QLabel(tag.name)
        self.label.setObjectName("loraName")
        self.label.setMinimumWidth(60)
        self.label.setToolTip(problem or f"<lora:{tag.name}:…> in the prompt")
        if problem:
            self.label.setText(f"⚠ {tag.name}")
            self.label.setObjectName("loraProblem")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(int(SLIDER_RANGE[0] * 20), int(SLIDER_RANGE[1] * 20))
        self.slider.setToolTip("Weight: 1 is the LoRA as trained, 0 turns it off")
        self.box = QDoubleSpinBox()
        self.box.setRange(*WEIGHT_RANGE)
        self.box.setSingleStep(0.05)
        self.box.setDecimals(2)
        self.box.setFixedWidth(64)
        self.words = QToolButton()
        self.words.setText("Words")
        self.words.setObjectName("action")
        self.words.setToolTip("Trigger words and frequent training tags: click one to add it to the prompt")
        self.words.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.words)
        for word in words:
            menu.addAction(word, lambda word=word: self.wordChosen.emit(word))
        self.words.setMenu(menu)
        self.words.setVisible(bool(words))
        self.remove = QToolButton()
        self.remove.setText("✕")
        self.remove.setObjectName("action")
        self.remove.setToolTip(f"Remove <lora:{tag.name}> from the prompt")
        self.remove.clicked.connect(self.removeRequested)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 2, 2)
        layout.setSpacing(6)
        layout.addWidget(self.label, 2)
        layout.addWidget(self.slider, 3)
        layout.addWidget(self.box)
        layout.addWidget(self.words)
        layout.addWidget(self.remove)
        self.show_weight(tag.weight)
        self.slider.valueChanged.connect(lambda value: self._edited(value / SLIDER_STEPS_PER_UNIT))
        self.box.valueChanged.connect(self._edited)

    def show_weight(self, weight: float) -> None:
        for widget, value in ((self.slider, round(weight * SLIDER_STEPS_PER_UNIT)), (self.box, weight)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)

    def weight(self) -> float:
        return round(self.box.value(), 2)

    def _edited(self, weight: float) -> None:
        weight = round(weight, 2)
        self.show_weight(weight)
        self.weightChanged.emit(weight)


class ActiveLoras(QWidget):
    """One row per LoRA tag in the prompt; hidden while the prompt has none."""

    weightChanged = Signal(int, float)  # the tag's index in the prompt, the new weight
    removeRequested = Signal(int)
    wordChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[LoraRow] = []
        self._shown: tuple = ()  # the names, words and problems the rows were built for
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)
        self.hide()

    def show_tags(self, tags: list[PromptLora], words: dict[str, tuple[str, ...]], problems: dict) -> None:
        """Rows for ``tags``; the same names in the same order only update their weights (a slider being
        dragged keeps its grip)."""
        shown = tuple((tag.name, words.get(tag.name, ()), problems.get(tag.name, "")) for tag in tags)
        if shown == self._shown:
            for row, tag in zip(self.rows, tags, strict=True):
                if abs(row.weight() - tag.weight) > 1e-9:
                    row.show_weight(tag.weight)
            return
        for row in self.rows:
            row.deleteLater()
        self.rows, self._shown = [], shown
        for index, tag in enumerate(tags):
            row = LoraRow(tag, words.get(tag.name, ()), problems.get(tag.name, ""))
            row.weightChanged.connect(lambda weight, index=index: self.weightChanged.emit(index, weight))
            row.removeRequested.connect(lambda index=index: self.removeRequested.emit(index))
            row.wordChosen.connect(self.wordChosen)
            self._layout.addWidget(row)
            self.rows.append(row)
        self.setVisible(bool(self.rows))
