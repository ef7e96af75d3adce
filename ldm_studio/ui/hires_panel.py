"""The "Hires fix" section of the prompt panel: A1111's hires fix settings, folded away until wanted.

It shows a request's ``hires`` and writes it back (``apply_to``); the final size is shown beside the
header ("512×512 → 1024×1024"). Nothing here touches torch: upscaler files are listed by name only.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.engine.hires_request import (
    DEFAULT_UPSCALER,
    LATENT_MODES,
    MAX_SCALE,
    MAX_SIDE,
    HiresFix,
    upscaler_choices,
)
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import sampler_names
from ldm_studio.ui.section_header import SectionHeader

SCALE_BY, RESIZE_TO = "scale", "resize"
SAME = "same"
STYLE = """
QLabel#hiresError { color: #e0a060; }
"""
UPSCALER_TIP = (
    "Latent modes enlarge the latent itself (fast; they want a strength of 0.5 or more). Lanczos and "
    "Nearest enlarge the decoded image; an upscaler file (ESRGAN & co. in your upscalers folders) "
    "adds detail first."
)


class HiresPanel(QWidget):
    """A collapsible section: on/off, upscaler, scale or target size, steps, strength, own sampler,
    CFG and prompts."""

    changed = Signal()
    upscalersWanted = Signal()  # shown: the window lists the upscaler files again (set_upscalers)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._first_size = (512, 512)
        self._files: list[str] = []
        self.setStyleSheet(STYLE)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._build()
        self._lay_out()
        self.set_expanded(False)
        for signal in (
            self.enabled.toggled,
            self.upscaler.currentIndexChanged,
            self.mode.currentIndexChanged,
            self.scale.valueChanged,
            self.resize_w.valueChanged,
            self.resize_h.valueChanged,
            self.steps.valueChanged,
            self.strength.valueChanged,
            self.sampler.currentIndexChanged,
            self.guidance.valueChanged,
            self.prompt.textChanged,
            self.negative.textChanged,
        ):
            signal.connect(self._edited)

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.header = SectionHeader("Hires fix")
        self.header.toggled.connect(self.set_expanded)
        self.enabled = QCheckBox("On")
        self.enabled.setToolTip(
            "Generate at the size above, enlarge, then denoise again at the larger size (A1111's hires fix)"
        )
        self.summary = QLabel()
        self.summary.setObjectName("hint")

        self.upscaler = QComboBox()
        self.upscaler.setToolTip(UPSCALER_TIP)
        self.refresh_upscalers()
        self.mode = QComboBox()
        self.mode.addItem("Upscale by", SCALE_BY)
        self.mode.addItem("Resize to", RESIZE_TO)
        self.scale = QDoubleSpinBox()
        self.scale.setRange(1.0, MAX_SCALE)
        self.scale.setSingleStep(0.05)
        self.scale.setDecimals(2)
        self.scale.setValue(2.0)
        self.scale.setPrefix("× ")
        self.resize_w, self.resize_h = QSpinBox(), QSpinBox()
        for box, value in ((self.resize_w, 1024), (self.resize_h, 1024)):
            box.setRange(0, MAX_SIDE)
            box.setSingleStep(8)
            box.setValue(value)
            box.setSuffix(" px")
            box.setSpecialValueText("auto")
            box.setToolTip("0 (auto) follows the other side, keeping the aspect; both set: crop to fit")
        self.steps = QSpinBox()
        self.steps.setRange(0, 150)
        self.steps.setSpecialValueText("same as Steps")
        self.steps.setToolTip("Steps of the second pass; 0 runs as many as the first")
        self.strength = QDoubleSpinBox()
        self.strength.setRange(0.0, 1.0)
        self.strength.setSingleStep(0.05)
        self.strength.setDecimals(2)
        self.strength.setValue(0.7)
        self.strength.setToolTip("Denoising strength of the second pass: how much it may change")
        self.sampler = QComboBox()
        self.sampler.addItem("Same sampler", SAME)
        for name in sampler_names():
            self.sampler.addItem(name, name)
        self.guidance = QDoubleSpinBox()
        self.guidance.setRange(0.0, 30.0)
        self.guidance.setSingleStep(0.5)
        self.guidance.setDecimals(1)
        self.guidance.setSpecialValueText("same CFG")
        self.prompt = QLineEdit()
        self.prompt.setPlaceholderText("Hires prompt (empty: the same prompt)")
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("Hires negative prompt (empty: the same)")
        self.error = QLabel()
        self.error.setObjectName("hiresError")
        self.error.setWordWrap(True)
        self.error.hide()

    def _lay_out(self) -> None:
        header_row = QHBoxLayout()
        header_row.setContentsMargins(0, 0, 0, 0)
        header_row.addWidget(self.header)
        header_row.addWidget(self.enabled)
        header_row.addWidget(self.summary, 1)

        self.body = QWidget()
        grid = QGridLayout(self.body)
        grid.setContentsMargins(16, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        grid.addWidget(QLabel("Upscaler"), 0, 0)
        grid.addWidget(self.upscaler, 0, 1, 1, 3)
        grid.addWidget(self.mode, 1, 0)
        size_row = QHBoxLayout()
        size_row.addWidget(self.scale, 1)
        size_row.addWidget(self.resize_w, 1)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.resize_h, 1)
        self._times = size_row.itemAt(2).widget()
        grid.addLayout(size_row, 1, 1, 1, 3)
        grid.addWidget(QLabel("Steps"), 2, 0)
        grid.addWidget(self.steps, 2, 1)
        grid.addWidget(QLabel("Strength"), 2, 2)
        grid.addWidget(self.strength, 2, 3)
        grid.addWidget(QLabel("Sampler"), 3, 0)
        grid.addWidget(self.sampler, 3, 1)
        grid.addWidget(QLabel("CFG"), 3, 2)
        grid.addWidget(self.guidance, 3, 3)
        grid.addWidget(self.prompt, 4, 0, 1, 4)
        grid.addWidget(self.negative, 5, 0, 1, 4)
        grid.addWidget(self.error, 6, 0, 1, 4)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(header_row)
        layout.addWidget(self.body)
        self._sync_mode()

    # ---- state in ---------------------------------------------------------------------------
    def set_expanded(self, expanded: bool) -> None:
        self.header.show_open(expanded)
        self.body.setVisible(expanded)
        if expanded:
            self.upscalersWanted.emit()

    def set_upscalers(self, names: list[str]) -> None:
        """The upscaler files in the library (by name), offered after the built-in choices."""
        if names != self._files:
            self._files = list(names)
            self.refresh_upscalers()

    def refresh_upscalers(self) -> None:
        """Latent modes, Lanczos, Nearest, then the upscaler files the window listed."""
        current = self.upscaler.currentText() or DEFAULT_UPSCALER
        self.upscaler.blockSignals(True)
        self.upscaler.clear()
        for name in upscaler_choices(Path(name) for name in self._files):
            self.upscaler.addItem(name)
        self.upscaler.insertSeparator(len(LATENT_MODES))
        self._choose_upscaler(current)
        self.upscaler.blockSignals(False)

    def set_request(self, request: GenerationRequest) -> None:
        """Show ``request``'s hires fix (off when it has none; the other fields then stay as they were)."""
        hires = request.hires
        widgets = (self.enabled, self.upscaler, self.mode, self.scale, self.resize_w, self.resize_h)
        widgets += (self.steps, self.strength, self.sampler, self.guidance, self.prompt, self.negative)
        for widget in widgets:
            widget.blockSignals(True)
        self.enabled.setChecked(hires is not None)
        if hires is not None:
            self._choose_upscaler(hires.upscaler)
            self.mode.setCurrentIndex(self.mode.findData(RESIZE_TO if hires.resize else SCALE_BY))
            self.scale.setValue(hires.scale)
            if hires.resize:
                self.resize_w.setValue(hires.resize[0])
                self.resize_h.setValue(hires.resize[1])
            self.steps.setValue(hires.steps)
            self.strength.setValue(hires.strength)
            index = self.sampler.findData(hires.sampler) if hires.sampler else 0
            self.sampler.setCurrentIndex(max(0, index))
            self.guidance.setValue(hires.guidance or 0.0)
            self.prompt.setText(hires.prompt)
            self.negative.setText(hires.negative_prompt)
        for widget in widgets:
            widget.blockSignals(False)
        self._sync_mode()
        if request.width and request.height:
            self._first_size = (request.width, request.height)
        self._show_summary(hires)

    # ---- the value out ----------------------------------------------------------------------
    def hires(self) -> HiresFix | None:
        """The settings as they stand; None when off (raises ValueError for impossible ones)."""
        if not self.enabled.isChecked():
            return None
        resize = None
        if self.mode.currentData() == RESIZE_TO:
            resize = (self.resize_w.value(), self.resize_h.value())
        sampler = self.sampler.currentData()
        return HiresFix(
            scale=round(self.scale.value(), 2),
            resize=resize,
            steps=self.steps.value(),
            strength=round(self.strength.value(), 2),
            upscaler=self.upscaler.currentText(),
            sampler="" if sampler == SAME else sampler,
            prompt=self.prompt.text().strip(),
            negative_prompt=self.negative.text().strip(),
            guidance=round(self.guidance.value(), 2) or None,
        )

    def apply_to(self, request: GenerationRequest) -> GenerationRequest:
        """``request`` with these settings; a setting that cannot run leaves hires off and says why."""
        if request.width and request.height:
            self._first_size = (request.width, request.height)
        problem = ""
        try:
            hires = self.hires()
            updated = request.replace(hires=hires)
        except ValueError as error:
            hires, updated, problem = None, request.replace(hires=None), str(error)
        if problem.startswith("hires fix works from text"):
            problem = "Hires fix works from text only: clear the source image above to use it."
        self.error.setText(problem[:1].upper() + problem[1:])
        self.error.setVisible(bool(problem))
        self._show_summary(hires)
        return updated

    # ---- internals --------------------------------------------------------------------------
    def _edited(self, *_args: object) -> None:
        self._sync_mode()
        self.changed.emit()

    def _choose_upscaler(self, name: str) -> None:
        index = self.upscaler.findText(name)
        if index < 0:  # an image's upscaler that is not here (yet): keep its name, it may be added
            self.upscaler.addItem(name)
            index = self.upscaler.count() - 1
        self.upscaler.setCurrentIndex(index)

    def _sync_mode(self) -> None:
        by_scale = self.mode.currentData() == SCALE_BY
        self.scale.setVisible(by_scale)
        for widget in (self.resize_w, self._times, self.resize_h):
            widget.setVisible(not by_scale)

    def _show_summary(self, hires: HiresFix | None) -> None:
        width, height = self._first_size
        if hires is None:
            self.summary.setText("off" if not self.enabled.isChecked() else "")
            return
        final_w, final_h = hires.final_size(width, height)
        steps = f"{hires.steps} steps" if hires.steps else "same steps"
        self.summary.setText(f"{width}×{height} → {final_w}×{final_h} · {hires.upscaler} · {steps}")
