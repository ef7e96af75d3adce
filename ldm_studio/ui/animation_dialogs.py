"""Dialogs for the two animations: exporting the denoising timeline, and a latent walk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.engine.request import MAX_SEED

FORMATS = [("Animated WebP", ".webp"), ("GIF", ".gif"), ("MP4 video", ".mp4")]


def mp4_available() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        return False
    return True


class _FileRow(QWidget):
    def __init__(self, path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.edit = QLineEdit(str(path))
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)

    def path(self) -> Path:
        return Path(self.edit.text()).expanduser()

    def set_suffix(self, suffix: str) -> None:
        self.edit.setText(str(self.path().with_suffix(suffix)))

    def _browse(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(self, "Save the animation as", str(self.path()))
        if chosen:
            self.edit.setText(chosen)


def _format_box() -> QComboBox:
    box = QComboBox()
    for label, suffix in FORMATS:
        box.addItem(label, suffix)
    if not mp4_available():
        index = box.findData(".mp4")
        box.model().item(index).setEnabled(False)
        box.setItemText(index, "MP4 video (install ldm-studio[video])")
    return box


def _fps_box(value: float) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(1, 60)
    box.setValue(value)
    box.setSuffix(" frames/s")
    return box


def _finish(dialog: QDialog, form: QFormLayout, accept: QDialogButtonBox.StandardButton, text: str) -> None:
    """The form above an accept/Cancel row; both animation dialogs end the same way."""
    buttons = QDialogButtonBox(accept | QDialogButtonBox.StandardButton.Cancel)
    buttons.button(accept).setText(text)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addLayout(form)
    layout.addWidget(buttons)
    dialog.resize(560, dialog.sizeHint().height())


@dataclass(frozen=True)
class ExportChoice:
    path: Path
    full: bool
    fps: float
    hold: float


class TimelineExportDialog(QDialog):
    def __init__(self, default_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export the denoising timeline")
        self.format = _format_box()
        self.file = _FileRow(default_path.with_suffix(".webp"))
        self.format.currentIndexChanged.connect(lambda _i: self.file.set_suffix(self.format.currentData()))
        self.frames = QComboBox()
        self.frames.addItem("Fast preview of each step (instant)", False)
        self.frames.addItem("Full VAE decode of each step (slower)", True)
        self.fps = _fps_box(8)
        self.hold = QDoubleSpinBox()
        self.hold.setRange(0, 10)
        self.hold.setValue(1.0)
        self.hold.setSuffix(" s on the last frame")
        form = QFormLayout()
        form.addRow("Format", self.format)
        form.addRow("Frames", self.frames)
        form.addRow("Speed", self.fps)
        form.addRow("Hold", self.hold)
        form.addRow("File", self.file)
        _finish(self, form, QDialogButtonBox.StandardButton.Save, "Save")

    def choice(self) -> ExportChoice:
        return ExportChoice(
            self.file.path(), bool(self.frames.currentData()), self.fps.value(), self.hold.value()
        )


@dataclass(frozen=True)
class WalkChoice:
    to_seed: int
    to_prompt: str
    frames: int
    fps: float
    path: Path


class WalkDialog(QDialog):
    """From the prompt panel's seed and prompt to another seed and/or prompt."""

    def __init__(
        self, from_seed: int, prompt: str, default_path: Path, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Latent walk")
        self.from_label = QLineEdit(f"seed {from_seed} · {prompt}")
        self.from_label.setReadOnly(True)
        self.to_seed = QSpinBox()
        self.to_seed.setRange(0, 2**31 - 1)  # QSpinBox is 32-bit signed; seeds above are still typed below
        self.to_seed.setValue(min(from_seed + 1, 2**31 - 1))
        self.to_prompt = QLineEdit()
        self.to_prompt.setPlaceholderText("same prompt (interpolate the noise only)")
        self.frames = QSpinBox()
        self.frames.setRange(2, 600)
        self.frames.setValue(24)
        self.fps = _fps_box(12)
        self.format = _format_box()
        self.file = _FileRow(default_path.with_suffix(".webp"))
        self.format.currentIndexChanged.connect(lambda _i: self.file.set_suffix(self.format.currentData()))
        form = QFormLayout()
        form.addRow("From", self.from_label)
        form.addRow("To seed", self.to_seed)
        form.addRow("To prompt", self.to_prompt)
        form.addRow("Frames", self.frames)
        form.addRow("Speed", self.fps)
        form.addRow("Format", self.format)
        form.addRow("File", self.file)
        _finish(self, form, QDialogButtonBox.StandardButton.Ok, "Start walk")

    def choice(self) -> WalkChoice:
        return WalkChoice(
            min(self.to_seed.value(), MAX_SEED),
            self.to_prompt.text().strip(),
            self.frames.value(),
            self.fps.value(),
            self.file.path(),
        )
