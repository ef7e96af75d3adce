"""Per-model settings: prediction type, a separate VAE, memory savers, the clip-skip default; convert a
.ckpt to safetensors."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.app.model_parts import flow_family, is_flow_model
from ldm_studio.engine.distilled import KIND_LABELS, NOT_DISTILLED, SETTING_KEY
from ldm_studio.ui.model_parts_box import ModelPartsBox

PREDICTIONS = [
    ("Detect automatically", None),
    ("epsilon (noise)", "epsilon"),
    ("v-prediction", "v_prediction"),
]
SAVERS = [
    ("attention_slicing", "Attention slicing", "Compute attention in slices: less memory, a little slower"),
    ("vae_tiling", "VAE tiling", "Decode large images tile by tile, so big sizes fit in memory"),
    (
        "cpu_offload",
        "CPU offload (CUDA)",
        "Keep weights in RAM and move each model to the GPU only while it runs",
    ),
    (
        "skip_memory_check",  # engine.memory_check.SKIP_SETTING; shown for SD 3 / FLUX models only
        "Load even if memory looks short",
        "SD 3 / FLUX: load although the estimate says this machine cannot hold the model (it may swap "
        "for minutes or be stopped by the system)",
    ),
]


class ModelSettingsDialog(QDialog):
    convertRequested = Signal(str)  # a .ckpt path to convert to .safetensors

    def __init__(
        self,
        model_path: Path,
        saved: dict,
        parent: QWidget | None = None,
        detected: str = "",
        tiny: QWidget | None = None,
    ) -> None:
        """``saved``: the settings remembered for this model (the session reads and writes them);
        ``detected``: the few-step kind its file says, e.g. "Turbo: Euler a, 1 step, CFG off"."""
        super().__init__(parent)
        self.model_path = Path(model_path)
        self.setWindowTitle(f"Model settings — {self.model_path.name}")
        is_file = self.model_path.is_file()

        self.prediction = QComboBox()
        for label, value in PREDICTIONS:
            self.prediction.addItem(label, value)
        self.prediction.setCurrentIndex(max(0, self.prediction.findData(saved.get("prediction_type"))))
        self.prediction.setToolTip(
            "SD 2.x 768 models use v-prediction and 512 ones epsilon; the file cannot tell. "
            "Your choice is remembered for this file."
        )
        self.vae = QLineEdit(str(saved.get("vae_path") or ""))
        self.vae.setPlaceholderText("the checkpoint's own VAE")
        choose_vae = QPushButton("Choose…")
        choose_vae.clicked.connect(self._choose_vae)
        clear_vae = QPushButton("Built-in")
        clear_vae.clicked.connect(self.vae.clear)
        vae_row = QHBoxLayout()
        vae_row.addWidget(self.vae, 1)
        vae_row.addWidget(choose_vae)
        vae_row.addWidget(clear_vae)
        self.clip_skip = QSpinBox()
        self.clip_skip.setRange(0, 12)
        self.clip_skip.setSpecialValueText("No default (keep the panel's)")
        self.clip_skip.setValue(saved.get("clip_skip") if isinstance(saved.get("clip_skip"), int) else 0)
        self.clip_skip.setToolTip(
            "The clip skip the prompt panel takes when this model loads (A1111's numbering: 1 = the text "
            "encoder's last layer, 2 = the penultimate). Many SD 1.5 anime models want 2."
        )
        self.few_step = QComboBox()
        self.few_step.addItem(f"Detected: {detected}" if detected else "Detect from the file", None)
        self.few_step.addItem("An ordinary model", NOT_DISTILLED)
        for kind, label in KIND_LABELS.items():
            self.few_step.addItem(label, kind)
        self.few_step.setCurrentIndex(max(0, self.few_step.findData(saved.get(SETTING_KEY))))
        self.few_step.setToolTip(
            "A few-step (distilled) model: the prompt panel takes its sampler, steps and CFG when it loads. "
            "Detected from the file's metadata and name; choose here when the file does not say."
        )
        self.savers = {}
        for key, label, tip in SAVERS:
            box = QCheckBox(label)
            box.setToolTip(tip)
            box.setChecked(bool(saved.get(key)))
            self.savers[key] = box

        flow = flow_family(self.model_path)  # SD 3 / FLUX single file: its parts are chosen below
        form = QFormLayout()
        if is_file and not flow:  # a flow file's VAE is one of its parts
            form.addRow("Prediction type", self.prediction)
            form.addRow("VAE", vae_row)
        form.addRow("Clip skip", self.clip_skip)
        form.addRow("Few-step model", self.few_step)
        if tiny is not None:  # ui.tiny_decoder_choice: per family, kept in the app settings
            form.addRow(f"Tiny decoder ({tiny.family})", tiny)
        if not (flow or is_flow_model(self.model_path)):
            self.savers.pop("skip_memory_check")
        for box in self.savers.values():
            form.addRow("" if box is not self.savers["attention_slicing"] else "Memory", box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        # SD 3 / FLUX single files: their separate text encoders and VAE (ui.model_parts_box)
        self.parts = ModelPartsBox(self.model_path, saved.get("parts")) if flow else None
        if self.parts is not None:
            layout.addWidget(self.parts)
        if self.model_path.suffix.lower() == ".ckpt":
            convert = QPushButton("Convert to .safetensors")
            convert.setToolTip("Write a .safetensors copy beside it: faster to open, and it cannot hold code")
            convert.clicked.connect(lambda: self.convertRequested.emit(str(self.model_path)))
            convert.clicked.connect(self.reject)
            layout.addWidget(convert)
        note = QLabel("Changes apply when the model is loaded again (OK reloads it).")
        note.setObjectName("hint")
        layout.addWidget(note)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(760 if self.parts is not None else 520, self.sizeHint().height())

    def accept(self) -> None:
        if self.parts is not None and self.parts.problem():  # a wrong file: say so, keep the dialog
            return
        super().accept()

    def _choose_vae(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a VAE",
            str(self.model_path.parent),
            "VAE (*.safetensors *.ckpt *.pt);;All files (*)",
        )
        if path:
            self.vae.setText(path)

    def values(self) -> dict:
        """The choices as the model settings store takes them (None: not set)."""
        values = {key: (True if box.isChecked() else None) for key, box in self.savers.items()}
        values["clip_skip"] = self.clip_skip.value() or None
        values[SETTING_KEY] = self.few_step.currentData()
        if self.model_path.is_file():
            values["prediction_type"] = self.prediction.currentData()
            values["vae_path"] = self.vae.text().strip() or None
        if self.parts is not None:
            values["parts"] = self.parts.values()
        return values
