"""Choosing and loading a model; shows what is loaded and where it runs."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.backend import ModelPreview, ModelSummary, human_size

DEVICES = [("Auto", "auto"), ("CUDA", "cuda"), ("Apple MPS", "mps"), ("CPU", "cpu")]
PRECISIONS = [("Auto", "auto"), ("fp16", "float16"), ("bf16", "bfloat16"), ("fp32", "float32")]


class ModelPanel(QWidget):
    loadRequested = Signal(str)  # a path
    placementChanged = Signal()
    settingsRequested = Signal()
    addFolderRequested = Signal(str)
    partsRequested = Signal()  # an SD 3 / FLUX model failed (parts, memory): open its settings

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models = QComboBox()
        self.models.setPlaceholderText("No models found")
        self.models.setToolTip("Known models: bundled, in your models folder, and folders you added")
        self.models.activated.connect(self._chosen)
        self.open_folder = QPushButton("Open folder…")
        self.open_folder.setToolTip("Open a diffusers model folder (with model_index.json)")
        self.open_folder.clicked.connect(self._browse_folder)
        self.open_file = QPushButton("Open file…")
        self.open_file.setToolTip("Open a .safetensors or .ckpt checkpoint")
        self.open_file.clicked.connect(self._browse_file)
        self.settings_button = QPushButton("Settings…")
        self.settings_button.setToolTip(
            "This model's prediction type, separate VAE and memory savers; convert a .ckpt to .safetensors"
        )
        self.settings_button.clicked.connect(self.settingsRequested)
        self.settings_button.setEnabled(False)
        self.add_folder = QPushButton("Add folder…")
        self.add_folder.setToolTip("Add a folder of models to the list (scanned in the background)")
        self.add_folder.clicked.connect(self._browse_library_folder)
        self.device = QComboBox()
        self.precision = QComboBox()
        for box, choices in ((self.device, DEVICES), (self.precision, PRECISIONS)):
            for label, value in choices:
                box.addItem(label, value)
            box.activated.connect(lambda _index: self.placementChanged.emit())
        self.device.setToolTip("Where the model runs: Auto picks CUDA, then Apple MPS, then the CPU")
        self.precision.setToolTip("Auto: fp16 on CUDA, fp32 on CPU and MPS")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setTextVisible(False)
        self.busy.setFixedHeight(4)
        self.busy.hide()
        self.status = QLabel("No model loaded")
        self.status.setObjectName("modelStatus")
        self.status.setWordWrap(True)
        self.choose_parts = QPushButton("Model settings…")
        self.choose_parts.setToolTip(
            "This model's settings: its text encoders and VAE, or loading it although memory looks short"
        )
        self.choose_parts.clicked.connect(self.partsRequested)
        self.choose_parts.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        heading = QLabel("MODEL")
        heading.setObjectName("heading")
        layout.addWidget(heading)
        layout.addWidget(self.models)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_folder)
        buttons.addWidget(self.open_file)
        layout.addLayout(buttons)
        more = QHBoxLayout()
        more.addWidget(self.add_folder)
        more.addWidget(self.settings_button)
        layout.addLayout(more)
        placement = QHBoxLayout()
        placement.addWidget(QLabel("Device"))
        placement.addWidget(self.device, 1)
        placement.addWidget(QLabel("Precision"))
        placement.addWidget(self.precision, 1)
        layout.addLayout(placement)
        layout.addWidget(self.busy)
        layout.addWidget(self.status)
        layout.addWidget(self.choose_parts)

    def set_entries(self, entries: list, current: str = "") -> None:
        """Fill the list from catalog entries or the model library's entries (with family and hash)."""
        self.models.blockSignals(True)
        self.models.clear()
        for entry in entries:
            self.models.addItem(entry_label(entry), str(entry.path))
            tip = entry_tooltip(entry)
            if tip:
                self.models.setItemData(self.models.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        index = self.models.findData(current)
        self.models.setCurrentIndex(index)
        self.models.blockSignals(False)

    def select_path(self, path: str) -> None:
        index = self.models.findData(path)
        if index < 0:
            self.models.addItem(Path(path).name, path)
            index = self.models.count() - 1
        self.models.setCurrentIndex(index)

    def placement_choice(self) -> tuple[str, str]:
        return self.device.currentData(), self.precision.currentData()

    def set_placement_choice(self, device: str, dtype: str) -> None:
        self.device.setCurrentIndex(max(0, self.device.findData(device)))
        self.precision.setCurrentIndex(max(0, self.precision.findData(dtype)))

    def show_loading(self, path: str) -> None:
        self.busy.show()
        self.status.setText(f"Loading {Path(path).name}…")
        self._set_controls_enabled(False)

    def show_inspected(self, preview: ModelPreview) -> None:
        self.status.setText(
            f"Loading {Path(preview.path).name}…<br><span style='color:#9aa0aa'>{preview.text}</span>"
        )

    def show_loaded(self, summary: ModelSummary) -> None:
        self.choose_parts.hide()
        self.settings_button.setEnabled(True)
        self.busy.hide()
        self._set_controls_enabled(True)
        self.select_path(summary.path)
        prediction = "v-prediction" if summary.prediction_type == "v_prediction" else summary.prediction_type
        if summary.fit.flow:  # SD 3 / FLUX: the variant people name, and no epsilon/v choice
            prediction = "flow matching"
        family = summary.fit.family_label or FAMILY_SHORT.get(summary.family, summary.family)
        self.status.setText(
            f"<b>{summary.name}</b><br>{family} · "
            f"{summary.native_size} px native · {prediction}"
            f"<br>Running on <b>{summary.device}</b> in <b>{summary.dtype}</b>"
        )
        self.status.setToolTip(summary.path)

    def show_failed(self, message: str, parts: bool = False) -> None:
        """``parts``: the model is a flow single file whose parts can be chosen in its settings."""
        self.choose_parts.setVisible(parts)
        self.busy.hide()
        self._set_controls_enabled(True)
        self.status.setText(f"<span style='color:#ff8a80'>Could not load the model.</span><br>{message}")

    def _set_controls_enabled(self, enabled: bool) -> None:
        for widget in (self.models, self.open_folder, self.open_file, self.device, self.precision):
            widget.setEnabled(enabled)

    def _chosen(self, index: int) -> None:
        path = self.models.itemData(index)
        if path:
            self.loadRequested.emit(path)

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a diffusers model folder")
        if folder:
            self.loadRequested.emit(folder)

    def _browse_library_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of models")
        if folder:
            self.addFolderRequested.emit(folder)

    def _browse_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a checkpoint", "", "Checkpoints (*.safetensors *.gguf *.ckpt);;All files (*)"
        )
        if path:
            self.loadRequested.emit(path)


FAMILY_SHORT = {
    "sd1": "SD 1.x",
    "sd2": "SD 2.x",
    "sdxl": "SDXL",
    "ldm-studio": "LDM Studio",
    "sd3": "SD 3",
    "flux": "FLUX.1",
}


def entry_label(entry: object) -> str:
    """'name · SD 1.x · 2.1 GB' for library entries; the catalog's own label otherwise."""
    family = getattr(entry, "family", None)
    if family is None:
        return entry.label
    parts = [entry.name, FAMILY_SHORT.get(family, family), human_size(entry.size)]
    if getattr(entry, "bundled", False):
        parts.append("bundled")
    if not getattr(entry, "loadable", True):
        parts.append("cannot load")
    return " · ".join(parts)


def entry_tooltip(entry: object) -> str:
    lines = [str(entry.path)]
    if getattr(entry, "short_hash", ""):
        lines.append(f"hash {entry.short_hash}")
    if getattr(entry, "reason", ""):
        lines.append(entry.reason)
    return "\n".join(lines)
