"""Which tiny decoder (TAESD family) a model family uses: in the model settings, remembered per family."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QPushButton, QWidget


class TinyDecoderChoice(QWidget):
    def __init__(
        self, family: str, installed: tuple[str, ...], chosen: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.family = family
        self.combo = QComboBox()
        first = Path(installed[0]).name if installed else "none installed"
        self.combo.addItem(f"Automatic ({first})", "")
        for path in installed:
            self.combo.addItem(Path(path).name, path)
        if chosen and self.combo.findData(chosen) < 0:
            self.combo.addItem(Path(chosen).name, chosen)
        self.combo.setCurrentIndex(max(0, self.combo.findData(chosen)))
        self.combo.setToolTip(
            f"The tiny autoencoder for every {family} model: the Tiny decoder preview and Draft decode. "
            "Put taesd_decoder.pth / .safetensors files or AutoencoderTiny folders in the tiny "
            "autoencoders folder to see them here."
        )
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(choose)

    def _choose(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a tiny decoder", "", "Tiny decoder (*.pth *.safetensors);;All files (*)"
        )
        if path:
            self.combo.addItem(Path(path).name, path)
            self.combo.setCurrentIndex(self.combo.count() - 1)

    def value(self) -> str:
        """The chosen file, or "" for the first installed one that fits."""
        return self.combo.currentData() or ""


def tiny_decoder_choice(session: Any) -> TinyDecoderChoice:
    """The row for the loaded model's family, filled from the library and the user's last choice."""
    model = session.model
    chosen = session.settings.tiny_decoders.get(model.family, "")
    return TinyDecoderChoice(model.family, model.tiny_decoders, chosen)


def bind_draft_decode(box: QCheckBox, session: Any) -> None:
    """The panel's Draft decode switch, shown as remembered and remembered as switched."""
    box.setChecked(session.settings.draft_decode)
    box.toggled.connect(session.preview_auto.set_draft)
