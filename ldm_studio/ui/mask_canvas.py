"""The mask painting surface: the source image with the mask tinted over it, brush strokes, undo and zoom.

Also the QImage <-> numpy conversions the editor and the source panel share.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from ldm_studio.ui import mask_ops

MAX_BRUSH = 200
UNDO_LIMIT = 40  # 40 snapshots of a 1024 × 1024 mask are 40 MB at most
OVERLAY_COLOUR = (255, 59, 48)
OVERLAY_OPACITY = 0.45
MAX_ZOOM = 64.0


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
