"""The "Advanced" fold of the Train a LoRA dialog: the settings most people leave as suggested."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QSpinBox, QToolButton, QWidget

from ldm_studio.app.lora_training_plan import LoraTrainingChoice


def spin_box(low: int, high: int, value: int, step: int = 1) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    return box


class LoraAdvancedFold(QWidget):
    """Alpha, batch, text encoder, caption dropout and shuffling, samples, seed; hidden until opened
    with ``toggle_button``."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.alpha = QDoubleSpinBox()
        self.alpha.setRange(0.1, 1024)
        self.alpha.setDecimals(1)
        self.alpha.setToolTip("The adapters' scale is alpha / rank")
        self.batch = spin_box(1, 256, 1)
        self.text_encoder = QCheckBox("Also adapt the text encoder")
        self.caption_dropout = QDoubleSpinBox()
        self.caption_dropout.setRange(0.0, 0.9)
        self.caption_dropout.setSingleStep(0.05)
        self.caption_dropout.setToolTip("How often a caption is left out (keeps guidance working)")
        self.shuffle_tags = QCheckBox("Shuffle comma-separated tags")
        self.keep_tags = spin_box(0, 32, 1)
        self.keep_tags.setToolTip("With shuffling: this many first tags stay in place")
        self.sample_every = spin_box(0, 100_000, 100, 50)
        self.sample_every.setSpecialValueText("never")
        self.seed = spin_box(0, 2**31 - 1, 0)
        form = QFormLayout(self)
        form.setContentsMargins(18, 0, 0, 0)
        form.addRow("Alpha", self.alpha)
        form.addRow("Batch", self.batch)
        form.addRow("", self.text_encoder)
        form.addRow("Caption dropout", self.caption_dropout)
        form.addRow("", self.shuffle_tags)
        form.addRow("Keep tokens", self.keep_tags)
        form.addRow("Samples every", self.sample_every)
        form.addRow("Seed", self.seed)

        self.toggle_button = QToolButton()
        self.toggle_button.setText("Advanced")
        self.toggle_button.setCheckable(True)
        self.toggle_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle_button.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle_button.setAutoRaise(True)
        self.toggle_button.toggled.connect(self._fold)
        self.hide()

    def _fold(self, open_: bool) -> None:
        self.setVisible(open_)
        self.toggle_button.setArrowType(Qt.ArrowType.DownArrow if open_ else Qt.ArrowType.RightArrow)

    def allow_text_encoder(self, allowed: bool) -> None:
        self.text_encoder.setEnabled(allowed)
        self.text_encoder.setToolTip("" if allowed else "This model's text encoder (MiniLM) takes no LoRA")

    def fill(self, choice: LoraTrainingChoice) -> None:
        self.alpha.setValue(choice.alpha)
        self.batch.setValue(choice.batch)
        self.text_encoder.setChecked(choice.text_encoder and self.text_encoder.isEnabled())
        self.caption_dropout.setValue(choice.caption_dropout)
        self.shuffle_tags.setChecked(choice.shuffle_tags)
        self.keep_tags.setValue(choice.keep_tags)
        self.sample_every.setValue(choice.sample_every)
        self.seed.setValue(choice.seed)

    def applied_to(self, choice: LoraTrainingChoice) -> LoraTrainingChoice:
        """``choice`` with this fold's settings."""
        return replace(
            choice,
            alpha=self.alpha.value(),
            batch=self.batch.value(),
            text_encoder=self.text_encoder.isChecked() and self.text_encoder.isEnabled(),
            caption_dropout=self.caption_dropout.value(),
            shuffle_tags=self.shuffle_tags.isChecked(),
            keep_tags=self.keep_tags.value(),
            sample_every=self.sample_every.value(),
            seed=self.seed.value(),
        )
