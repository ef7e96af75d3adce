"""The Upscale… dialog: which upscaler and which factor, for one gallery image.

The list is the built-in resizes and the upscaler files the library finds; a file that cannot be
opened here stays in the list, disabled, with the reason beside it. The factor starts at the model's
own scale (×2 for the built-ins).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QImageReader, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.session import Session
from ldm_studio.app.upscale_task import FACTORS, UpscalerChoice, default_factor


class UpscaleDialog(QDialog):
    def __init__(self, source: Path, choices: list[UpscalerChoice], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Upscale image")
        self.source, self.choices = Path(source), choices
        self.size = QImageReader(str(source)).size()  # the header only; invalid when unreadable

        intro = QLabel(f"Enlarge <b>{self.source.name}</b> into a new gallery image.")
        intro.setWordWrap(True)
        self.upscaler = QComboBox()
        self.upscaler.setMinimumWidth(280)
        model = self.upscaler.model()
        for row, choice in enumerate(choices):
            self.upscaler.addItem(choice.label, choice.value)
            if choice.problem and isinstance(model, QStandardItemModel):
                model.item(row).setEnabled(False)
                model.item(row).setToolTip(choice.problem)
        self.factor = QComboBox()
        for factor in FACTORS:
            self.factor.addItem(f"×{factor}", factor)
        self.result_size = QLabel()
        self.result_size.setObjectName("hint")
        self.note = QLabel()
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Upscaler", self.upscaler)
        form.addRow("Factor", self.factor)
        form.addRow("Result", self.result_size)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Upscale")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.note)
        layout.addWidget(self.buttons)

        self.upscaler.currentIndexChanged.connect(self._upscaler_changed)
        self.factor.currentIndexChanged.connect(self._show_size)
        first_usable = next((row for row, choice in enumerate(choices) if not choice.problem), 0)
        self.upscaler.setCurrentIndex(first_usable)
        self._upscaler_changed(first_usable)

    def current(self) -> UpscalerChoice | None:
        row = self.upscaler.currentIndex()
        return self.choices[row] if 0 <= row < len(self.choices) else None

    def choice(self) -> tuple[str, int]:
        """The upscaler (a built-in's name or a file's path) and the factor."""
        current = self.current()
        return (current.value if current else "Lanczos"), int(self.factor.currentData())

    def _upscaler_changed(self, _row: int) -> None:
        current = self.current()
        if current is None:
            return
        self.factor.setCurrentIndex(self.factor.findData(default_factor(current)))
        if current.problem:
            note = current.problem
        elif current.scale is None:
            note = "A plain resize: quick, but it adds no detail."
        else:
            note = f"A {current.scale}× network, run in overlapping tiles; this can take a while on a CPU."
        self.note.setText(note)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not current.problem)
        self._show_size()

    def _show_size(self, *_args: object) -> None:
        if not self.size.isValid():
            self.result_size.setText("—")
            return
        factor = int(self.factor.currentData())
        width, height = self.size.width(), self.size.height()
        self.result_size.setText(f"{width} × {height}  →  {width * factor} × {height * factor}")


def ask_and_upscale(session: Session, row: int, parent: QWidget | None = None) -> bool:
    """Show the dialog for gallery row ``row`` and, when accepted, start the upscale on the session."""
    entries = session.gallery.entries([row]) if session.gallery is not None else []
    if not entries:
        return False
    dialog = UpscaleDialog(entries[0].path, session.upscaler_choices(), parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return False
    upscaler, factor = dialog.choice()
    return session.upscale_image(entries[0].path, upscaler, factor)
