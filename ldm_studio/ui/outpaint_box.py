"""The source panel's "Outpaint" row: how far to extend each side of the source, and the fill."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QGridLayout, QLabel, QSpinBox, QWidget

from ldm_studio.engine.outpaint import DEFAULT_FEATHER, FILLS, MAX_EXTENSION, STEP, Outpaint

SIDE_PREFIXES = (("left", "← "), ("right", "→ "), ("top", "↑ "), ("bottom", "↓ "))
FILL_LABELS = {"edge": "Stretch edges", "mirror": "Blurred mirror", "noise": "Noise"}


class OutpaintBox(QWidget):
    """Four compact pixel boxes (0 = keep that side) and the fill; shows the size it will produce."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image_size: tuple[int, int] | None = None
        self._feather = DEFAULT_FEATHER  # kept from a reused request; the UI does not edit it
        self.sides: dict[str, QSpinBox] = {}
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setHorizontalSpacing(4)
        layout.setVerticalSpacing(4)
        for column, (side, prefix) in enumerate(SIDE_PREFIXES):
            box = QSpinBox()
            box.setRange(0, MAX_EXTENSION)
            box.setSingleStep(STEP * 4)
            box.setPrefix(prefix)
            box.setToolTip(f"Pixels to add on the {side} (rounded up to a multiple of 8); 0 keeps it")
            box.valueChanged.connect(self._edited)
            layout.addWidget(box, 0, column)
            self.sides[side] = box
        self.fill = QComboBox()
        for fill in FILLS:
            self.fill.addItem(FILL_LABELS[fill], fill)
        self.fill.setToolTip("What the new area starts from before it is painted")
        self.fill.currentIndexChanged.connect(self._edited)
        self.result_label = QLabel()
        self.result_label.setObjectName("hint")
        layout.addWidget(self.fill, 1, 0, 1, 2)
        layout.addWidget(self.result_label, 1, 2, 1, 2)

    def outpaint(self) -> Outpaint | None:
        """The extension as set, or None when every side is 0."""
        values = {side: box.value() for side, box in self.sides.items()}
        if not any(values.values()):
            return None
        return Outpaint(**values, fill=self.fill.currentData(), feather=self._feather)

    def set_outpaint(self, outpaint: Outpaint | None) -> None:
        for side, box in self.sides.items():
            box.blockSignals(True)
            box.setValue(getattr(outpaint, side) if outpaint else 0)
            box.blockSignals(False)
        self.fill.blockSignals(True)
        self.fill.setCurrentIndex(max(0, self.fill.findData(outpaint.fill if outpaint else FILLS[0])))
        self.fill.blockSignals(False)
        self._feather = outpaint.feather if outpaint else DEFAULT_FEATHER
        self._sync()

    def set_image_size(self, size: tuple[int, int] | None) -> None:
        self._image_size = size
        self._sync()

    def _edited(self) -> None:
        self._sync()
        self.changed.emit()

    def _sync(self) -> None:
        outpaint = self.outpaint()
        self.fill.setEnabled(outpaint is not None)
        if outpaint is None or self._image_size is None:
            self.result_label.setText("Off: all sides 0" if outpaint is None else "")
            return
        width, height = outpaint.canvas_for(self._image_size)
        self.result_label.setText(f"Result {width} × {height}")
