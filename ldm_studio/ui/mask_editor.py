"""Paint an inpainting mask over the source image: brush, eraser, undo, invert, feather preview, zoom."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QIcon,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QShortcut,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.ui import mask_ops

MAX_BRUSH = 200
MAX_FEATHER = 32
UNDO_LIMIT = 40  # 40 snapshots of a 1024 × 1024 mask are 40 MB at most
OVERLAY_COLOUR = (255, 59, 48)
OVERLAY_OPACITY = 0.45
MAX_ZOOM = 64.0

EDITOR_STYLE = """
QToolButton { background: #30333a; border: 1px solid #3f434c; border-radius: 4px; padding: 3px 7px; }
QToolButton:hover { border-color: #6c8cff; }
QToolButton:checked { background: #3a4770; border-color: #6c8cff; color: #ffffff; }
QToolButton:disabled { color: #6b6f78; border-color: #34373e; }
"""


def grey_image(mask: np.ndarray) -> QImage:
    """A (height, width) uint8 array as a Format_Grayscale8 QImage that owns its pixels."""
    height, width = mask.shape
    pixels = np.ascontiguousarray(mask)
    return QImage(pixels.data, width, height, width, QImage.Format.Format_Grayscale8).copy()


def grey_array(image: QImage) -> np.ndarray:
    """Any QImage as a (height, width) uint8 array of its grey levels (rows may be padded in Qt)."""
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    rows = np.frombuffer(grey.constBits(), dtype=np.uint8).reshape(grey.height(), grey.bytesPerLine())
    return rows[:, : grey.width()].copy()


def opaque_image(image: QImage) -> QImage:
    """The image as the engine sees it: transparent parts lie on white (see engine.images.open_image)."""
    flat = QImage(image.size(), QImage.Format.Format_RGB32)
    flat.fill(QColor("white"))
    painter = QPainter(flat)
    painter.drawImage(0, 0, image)
    painter.end()
    return flat


def default_brush_size(width: int, height: int) -> int:
    """About a sixteenth of the short side: 2 px on a 32 px emoji, 32 px on a 512 px photo."""
    return max(1, min(MAX_BRUSH, round(min(width, height) / 16)))


class MaskCanvas(QWidget):
    """The image with the mask tinted over it. Left-drag paints (or erases with the eraser),
    right-drag always erases, middle-drag pans, the wheel zooms around the pointer."""

    edited = Signal()  # after every stroke, clear, invert, undo or redo
    brushSizeChanged = Signal(int)  # noqa: N815 (Qt signal naming)

    def __init__(self, image: QImage, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = opaque_image(image)
        self._mask = mask_ops.empty_mask(self._image.width(), self._image.height())
        self._undo: list[np.ndarray] = []
        self._redo: list[np.ndarray] = []
        self.brush_size = default_brush_size(self._image.width(), self._image.height())
        self.erasing = False
        self.feather = 0.0
        self._overlay_table = mask_ops.overlay_table(OVERLAY_COLOUR, OVERLAY_OPACITY)
        self._overlay_pixels: np.ndarray | None = None  # None: rebuild it all at the next paint
        self._dirty_box: tuple[int, int, int, int] | None = None  # brushed since the last paint
        self._scale = 1.0
        self._offset = QPointF()
        self._fitting = True  # refit on resize until the user zooms or pans
        self._pointer: QPointF | None = None
        self._stroke_value: int | None = None
        self._stroke_last: tuple[float, float] | None = None
        self._pan_from: QPointF | None = None
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.BlankCursor)  # the round brush outline is the cursor
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 320)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    # ---- the mask ---------------------------------------------------------------------------
    def image_size(self) -> QSize:
        return self._image.size()

    def mask(self) -> np.ndarray:
        return self._mask.copy()

    def set_mask(self, mask: np.ndarray) -> None:
        """Replace the mask without an undo step (a fresh editor state)."""
        if mask.shape != self._mask.shape:
            raise ValueError(f"mask shape {mask.shape} differs from the image's {self._mask.shape}")
        self._mask = mask.astype(np.uint8, copy=True)
        self._undo.clear()
        self._redo.clear()
        self._mask_changed()

    def clear(self) -> None:
        if self._mask.any():
            self._remember()
            self._mask[:] = mask_ops.KEPT
            self._mask_changed()
            self.edited.emit()

    def invert(self) -> None:
        self._remember()
        self._mask = mask_ops.inverted(self._mask)
        self._mask_changed()
        self.edited.emit()

    def undo(self) -> None:
        if self._undo:
            self._redo.append(self._mask)
            self._mask = self._undo.pop()
            self._mask_changed()
            self.edited.emit()

    def redo(self) -> None:
        if self._redo:
            self._undo.append(self._mask)
            self._mask = self._redo.pop()
            self._mask_changed()
            self.edited.emit()

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def set_feather(self, radius: float) -> None:
        self.feather = radius
        self._mask_changed()

    def set_brush_size(self, size: int) -> None:
        size = max(1, min(MAX_BRUSH, int(size)))
        if size != self.brush_size:
            self.brush_size = size
            self.brushSizeChanged.emit(size)
            self.update()

    def _remember(self) -> None:
        self._undo.append(self._mask.copy())
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()

    def _mask_changed(self, box: tuple[int, int, int, int] | None = None) -> None:
        """Note what changed; the overlay is refreshed at the next paint, once per frame while dragging,
        and only around the brush when a box is given."""
        if box is None:
            self._overlay_pixels = None
        elif self._dirty_box is None:
            self._dirty_box = box
        else:
            old = self._dirty_box
            self._dirty_box = (
                min(old[0], box[0]),
                min(old[1], box[1]),
                max(old[2], box[2]),
                max(old[3], box[3]),
            )
        self.update()

    # ---- view: where the image sits on screen -----------------------------------------------
    def scale(self) -> float:
        return self._scale

    def image_to_widget(self, x: float, y: float) -> QPointF:
        return self._offset + QPointF(x, y) * self._scale

    def widget_to_image(self, point: QPointF) -> tuple[float, float]:
        local = (point - self._offset) / self._scale
        return local.x(), local.y()

    def image_rect(self) -> QRectF:
        return QRectF(self._offset, self._image.size().toSizeF() * self._scale)

    def fit_to_view(self) -> None:
        """Largest size that fits; whole-number factors when enlarging so every pixel is the same size."""
        margin = 16
        width = max(1, self.width() - 2 * margin)
        height = max(1, self.height() - 2 * margin)
        scale = min(width / self._image.width(), height / self._image.height())
        if scale >= 2:
            scale = math.floor(scale)
        self._scale = scale
        size = self._image.size().toSizeF() * scale
        self._offset = QPointF((self.width() - size.width()) / 2, (self.height() - size.height()) / 2)
        self._fitting = True
        self.update()

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under ``anchor`` (the pointer) where it is."""
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        fit = min(self.width() / self._image.width(), self.height() / self._image.height())
        scale = min(MAX_ZOOM, max(min(fit, 1.0) / 4, self._scale * factor))
        x, y = self.widget_to_image(anchor)
        self._scale = scale
        self._offset = anchor - QPointF(x, y) * scale
        self._fitting = False
        self.update()

    # ---- events -----------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        if self._fitting:
            self.fit_to_view()
        super().resizeEvent(event)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        button = event.button()
        if button == Qt.MouseButton.MiddleButton:
            self._pan_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if button not in (Qt.MouseButton.LeftButton, Qt.MouseButton.RightButton):
            return
        erase = self.erasing or button == Qt.MouseButton.RightButton
        self._stroke_value = mask_ops.KEPT if erase else mask_ops.PAINTED
        self._remember()
        centre = mask_ops.brush_centre(*self.widget_to_image(event.position()), self.brush_size)
        self._stroke_last = centre
        self._stamp(centre, centre)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        self._pointer = event.position()
        if self._pan_from is not None:
            self._offset += event.position() - self._pan_from
            self._pan_from = event.position()
            self._fitting = False
        elif self._stroke_value is not None and self._stroke_last is not None:
            centre = mask_ops.brush_centre(*self.widget_to_image(event.position()), self.brush_size)
            self._stamp(self._stroke_last, centre)
            self._stroke_last = centre
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if self._pan_from is not None and event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = None
            self.setCursor(Qt.CursorShape.BlankCursor)
            return
        if self._stroke_value is not None:
            self._stroke_value = None
            self._stroke_last = None
            self.edited.emit()

    def leaveEvent(self, event) -> None:  # noqa: N802 (Qt API)
        self._pointer = None
        self.update()
        super().leaveEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt API)
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(1.25**steps, event.position())
        event.accept()

    def _stamp(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        assert self._stroke_value is not None
        box = mask_ops.paint_segment(self._mask, start, end, self.brush_size, self._stroke_value)
        if box is not None:
            self._mask_changed(box)

    # ---- painting ---------------------------------------------------------------------------
    def overlay(self) -> QImage:
        """The tint over the image: the mask softened by the feather the engine will apply."""
        if self._overlay_pixels is None:
            soft = mask_ops.feathered(self._mask, self.feather)
            self._overlay_pixels = np.ascontiguousarray(self._overlay_table[soft])
        elif self._dirty_box is not None:
            mask_ops.refresh_overlay(
                self._overlay_pixels, self._mask, self._dirty_box, self.feather, self._overlay_table
            )
        self._dirty_box = None
        height, width = self._mask.shape
        # A view of the numpy pixels, not a copy; painted at once, before the next edit.
        return QImage(
            self._overlay_pixels.data, width, height, width * 4, QImage.Format.Format_RGBA8888_Premultiplied
        )

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#17181b"))
        target = self.image_rect()
        # Nearest-neighbour from 2× up keeps a 32 px emoji's pixels (and the mask's) crisp and square;
        # below that, smoothing avoids uneven jaggies on photos.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._scale < 2)
        painter.drawImage(target, self._image)
        painter.drawImage(target, self.overlay())
        painter.setPen(QPen(QColor(255, 255, 255, 40), 1))
        painter.drawRect(target.adjusted(-0.5, -0.5, 0.5, 0.5))
        if self._pointer is not None and self._pan_from is None:
            self._paint_brush_outline(painter)
        painter.end()

    def _paint_brush_outline(self, painter: QPainter) -> None:
        assert self._pointer is not None
        x, y = mask_ops.brush_centre(*self.widget_to_image(self._pointer), self.brush_size)
        centre = self.image_to_widget(x, y)
        radius = self.brush_size / 2 * self._scale
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        # A dark ring under a light one stays visible on any image.
        for colour, width in ((QColor(0, 0, 0, 160), 3.0), (QColor(255, 255, 255, 230), 1.2)):
            painter.setPen(QPen(colour, width))
            painter.drawEllipse(centre, radius, radius)
        if radius < 6:  # a tiny brush also gets a cross so the pointer is never lost
            painter.setPen(QPen(QColor(255, 255, 255, 230), 1.2))
            painter.drawLine(centre - QPointF(8, 0), centre - QPointF(radius + 2, 0))
            painter.drawLine(centre + QPointF(radius + 2, 0), centre + QPointF(8, 0))
            painter.drawLine(centre - QPointF(0, 8), centre - QPointF(0, radius + 2))
            painter.drawLine(centre + QPointF(0, radius + 2), centre + QPointF(0, 8))


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
