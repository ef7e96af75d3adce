"""The prompt panel's image size: a preset ("Native", common sizes, Custom) and the width and height
boxes, which step by the loaded model's multiple (8 for SD, 16 for SD 3 / FLUX: ``app.model_fit``)."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QSpinBox

SIZE_PRESETS = [(256, 256), (512, 512), (768, 768), (1024, 1024), (512, 768), (768, 512), (832, 1216)]
NATIVE = "native"
MAX_SIDE = 2048


class SizeChoice:
    """The three size widgets and what they show; the panel lays them out and reads ``size``."""

    def __init__(self) -> None:
        self.native_size = 512
        self.step = 8
        self.preset = QComboBox()
        self.preset.addItem("Native", NATIVE)
        for width, height in SIZE_PRESETS:
            self.preset.addItem(f"{width} × {height}", (width, height))
        self.preset.addItem("Custom", None)
        self.preset.currentIndexChanged.connect(self._apply_preset)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(8, MAX_SIDE)
            box.setSingleStep(8)
            box.setValue(512)
            box.setSuffix(" px")
            box.valueChanged.connect(self._edited)

    def size(self) -> tuple[int, int]:
        """The sides as typed, down to a multiple of 8 (the session fits them to the model's multiple)."""
        return self.width_box.value() // 8 * 8, self.height_box.value() // 8 * 8

    def native_chosen(self) -> bool:
        return self.preset.currentData() == NATIVE

    def set_native_size(self, size: int) -> bool:
        """Show the model's native size; True when the boxes changed with it."""
        self.native_size = size
        self.preset.setItemText(0, f"Native ({size} × {size})")
        if self.native_chosen():
            self._apply_preset()
            return True
        return False

    def set_step(self, step: int, why: str = "") -> None:
        """The boxes' arrows step by ``step`` (the model's multiple); ``why`` goes in their tooltip."""
        self.step = step
        for box in (self.width_box, self.height_box):
            box.setSingleStep(step)
            box.setMinimum(step)
            box.setToolTip(why)

    def set_size(self, width: int, height: int) -> None:
        """Show a size (signals blocked): its preset when it has one, else Custom."""
        preset = self.preset.findData((width, height))
        if width == height == self.native_size:
            preset = 0
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(preset if preset >= 0 else self.preset.count() - 1)
        self.preset.blockSignals(False)
        self._set_boxes(width, height)

    def _set_boxes(self, width: int, height: int) -> None:
        for box, value in ((self.width_box, width), (self.height_box, height)):
            box.blockSignals(True)
            box.setValue(value)
            box.blockSignals(False)

    def _apply_preset(self) -> None:
        data = self.preset.currentData()
        if data == NATIVE:
            self._set_boxes(self.native_size, self.native_size)
        elif data:
            self._set_boxes(*data)

    def _edited(self) -> None:
        self.preset.blockSignals(True)
        self.preset.setCurrentIndex(self.preset.count() - 1)  # Custom
        self.preset.blockSignals(False)
