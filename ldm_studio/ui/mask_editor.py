"""Paint an inpainting mask over the source image: brush, eraser, undo, invert, feather preview, zoom.

The dialog holds the tools, shortcuts and coverage read-out; the painting itself is ``MaskCanvas``.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.ui import mask_ops
from ldm_studio.ui.mask_canvas import MAX_BRUSH, MaskCanvas, grey_array, grey_image

MAX_FEATHER = 32

EDITOR_STYLE = """
QToolButton { background: #30333a; border: 1px solid #3f434c; border-radius: 4px; padding: 3px 7px; }
QToolButton:hover { border-color: #6c8cff; }
QToolButton:checked { background: #3a4770; border-color: #6c8cff; color: #ffffff; }
QToolButton:disabled { color: #6b6f78; border-color: #34373e; }
"""


class MaskEditor(QDialog):
    """A modal dialog around a MaskCanvas. White (painted) areas are repainted by the engine."""

    def __init__(
        self,
        image: QImage,
        mask: QImage | None = None,
        feather: float = 0.0,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Paint the area to repaint")
        self.setStyleSheet(EDITOR_STYLE)
        self.canvas = MaskCanvas(image)
        self.canvas.edited.connect(self._sync)
        self._build_tools()
        self._build_layout()
        self._build_shortcuts()
        if mask is not None:
            self.set_mask(mask)
        self.feather_slider.setValue(round(feather))
        self.resize(960, 780)
        self._sync()

    # ---- public API -------------------------------------------------------------------------
    def mask_image(self) -> QImage:
        """The painted mask at the image's size, Format_Grayscale8: 255 repaint, 0 keep."""
        return grey_image(self.canvas.mask())

    def mask_array(self) -> np.ndarray:
        return self.canvas.mask()

    def set_mask(self, mask: QImage) -> None:
        """Show an existing mask; one of another size is scaled (nearest) to the image."""
        size = self.canvas.image_size()
        if mask.size() != size:
            mask = mask.scaled(
                size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.FastTransformation
            )
        self.canvas.set_mask(grey_array(mask))
        self._sync()

    def feather(self) -> float:
        return float(self.feather_slider.value())

    def set_feather(self, radius: float) -> None:
        self.feather_slider.setValue(round(radius))

    # ---- building ---------------------------------------------------------------------------
    def _build_tools(self) -> None:
        self.brush_button = _tool("Brush", "Paint the area to repaint (B)", checkable=True)
        self.eraser_button = _tool(
            "Eraser", "Erase, keeping the original there (E; right-drag also erases)", checkable=True
        )
        self.brush_button.setChecked(True)
        tools = QButtonGroup(self)
        tools.setExclusive(True)
        tools.addButton(self.brush_button)
        tools.addButton(self.eraser_button)
        self.eraser_button.toggled.connect(self._set_erasing)

        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(1, MAX_BRUSH)
        self.size_box = QSpinBox()
        self.size_box.setRange(1, MAX_BRUSH)
        self.size_box.setSuffix(" px")
        self.size_box.setToolTip("Brush diameter in image pixels ([ and ] change it)")
        for control in (self.size_slider, self.size_box):
            control.setValue(self.canvas.brush_size)
            control.valueChanged.connect(self.canvas.set_brush_size)
        self.canvas.brushSizeChanged.connect(self._show_brush_size)

        self.feather_slider = QSlider(Qt.Orientation.Horizontal)
        self.feather_slider.setRange(0, MAX_FEATHER)
        self.feather_box = QSpinBox()
        self.feather_box.setRange(0, MAX_FEATHER)
        self.feather_box.setSuffix(" px")
        self.feather_box.setToolTip(
            "Soften the mask edge so the repainted area blends in (shown as a soft tint)"
        )
        self.feather_slider.valueChanged.connect(self.feather_box.setValue)
        self.feather_box.valueChanged.connect(self.feather_slider.setValue)
        self.feather_slider.valueChanged.connect(self.canvas.set_feather)

        self.undo_button = _tool("Undo", "Undo (Ctrl+Z)")
        self.undo_button.clicked.connect(self.canvas.undo)
        self.redo_button = _tool("Redo", "Redo (Ctrl+Shift+Z)")
        self.redo_button.clicked.connect(self.canvas.redo)
        self.invert_button = _tool("Invert", "Swap painted and kept areas (Ctrl+I)")
        self.invert_button.clicked.connect(self.canvas.invert)
        self.clear_button = _tool("Clear", "Remove the whole mask")
        self.clear_button.clicked.connect(self.canvas.clear)
        self.fit_button = _tool("Fit", "Zoom to fit (F); the wheel zooms, middle-drag pans")
        self.fit_button.clicked.connect(self.canvas.fit_to_view)

        self.coverage_label = QLabel()
        self.coverage_label.setObjectName("hint")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        for button in self.buttons.buttons():
            button.setIcon(QIcon())  # plain text buttons, like the rest of the app
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    def _build_layout(self) -> None:
        tools = QHBoxLayout()
        tools.setSpacing(6)
        tools.addWidget(self.brush_button)
        tools.addWidget(self.eraser_button)
        tools.addSpacing(12)
        tools.addWidget(QLabel("Size"))
        tools.addWidget(self.size_slider, 2)
        tools.addWidget(self.size_box)
        tools.addSpacing(12)
        tools.addWidget(QLabel("Feather"))
        tools.addWidget(self.feather_slider, 1)
        tools.addWidget(self.feather_box)
        tools.addSpacing(12)
        for button in (
            self.undo_button,
            self.redo_button,
            self.invert_button,
            self.clear_button,
            self.fit_button,
        ):
            tools.addWidget(button)

        bottom = QHBoxLayout()
        hint = QLabel("Paint what should change. Right-drag erases · wheel zooms · middle-drag pans")
        hint.setObjectName("hint")
        bottom.addWidget(hint, 1)
        bottom.addWidget(self.coverage_label)
        bottom.addSpacing(12)
        bottom.addWidget(self.buttons)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 10, 10, 10)
        layout.setSpacing(8)
        layout.addLayout(tools)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(bottom)

    def _build_shortcuts(self) -> None:
        bindings = [
            (QKeySequence.StandardKey.Undo, self.canvas.undo),
            (QKeySequence.StandardKey.Redo, self.canvas.redo),
            (QKeySequence("Ctrl+Shift+Z"), self.canvas.redo),
            (QKeySequence("Ctrl+I"), self.canvas.invert),
            (QKeySequence("B"), lambda: self.brush_button.setChecked(True)),
            (QKeySequence("E"), lambda: self.eraser_button.setChecked(True)),
            (QKeySequence("F"), self.canvas.fit_to_view),
            (QKeySequence("["), lambda: self._step_brush(-1)),
            (QKeySequence("]"), lambda: self._step_brush(+1)),
        ]
        seen: set[str] = set()
        for key, handler in bindings:
            sequence = QKeySequence(key)
            if sequence.isEmpty() or sequence.toString() in seen:
                continue  # Redo is Ctrl+Shift+Z on some platforms already
            seen.add(sequence.toString())
            QShortcut(sequence, self, handler)

    # ---- reactions --------------------------------------------------------------------------
    def _set_erasing(self, erasing: bool) -> None:
        self.canvas.erasing = erasing

    def _step_brush(self, direction: int) -> None:
        """Brush size in steps of about 15 %, at least one pixel."""
        size = self.canvas.brush_size
        change = max(1, round(size * 0.15))
        self.canvas.set_brush_size(size + direction * change)

    def _show_brush_size(self, size: int) -> None:
        for control in (self.size_slider, self.size_box):
            control.blockSignals(True)
            control.setValue(size)
            control.blockSignals(False)

    def _sync(self) -> None:
        share = mask_ops.coverage(self.canvas.mask())
        self.coverage_label.setText(f"Mask: {coverage_text(share)} of the image")
        self.undo_button.setEnabled(self.canvas.can_undo())
        self.redo_button.setEnabled(self.canvas.can_redo())


def coverage_text(share: float) -> str:
    """23 % — and "< 1 %" rather than a misleading 0 % when a few pixels are painted."""
    if 0 < share < 0.005:
        return "< 1 %"
    return f"{share * 100:.0f} %"


def _tool(text: str, tip: str, checkable: bool = False) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    button.setCheckable(checkable)
    button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    return button
