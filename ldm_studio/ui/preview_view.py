"""The big image: the live preview while generating, the chosen result afterwards."""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget


class PreviewView(QWidget):
    """Shows one image scaled to fit: crisp (nearest) when enlarging small images, smooth otherwise."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._message = ""
        self.setMinimumSize(256, 256)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def image(self) -> QImage | None:
        return self._image

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def set_message(self, message: str) -> None:
        self._message = message
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(640, 640)

    def image_rect(self) -> QRect:
        """Where the image is drawn: the largest centred rectangle with the image's aspect ratio."""
        if self._image is None or self._image.isNull():
            return QRect()
        margin = 12
        available = self.rect().adjusted(margin, margin, -margin, -margin)
        size = self._image.size().scaled(available.size(), Qt.AspectRatioMode.KeepAspectRatio)
        left = available.left() + (available.width() - size.width()) // 2
        top = available.top() + (available.height() - size.height()) // 2
        return QRect(left, top, size.width(), size.height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 31, 34))
        if self._image is not None and not self._image.isNull():
            target = self.image_rect()
            enlarging = target.width() > self._image.width()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not enlarging)
            painter.fillRect(target.adjusted(-1, -1, 1, 1), QColor(60, 62, 66))
            painter.drawImage(target, self._image)
        elif self._message:
            painter.setPen(QColor(160, 162, 168))
            font = painter.font()
            font.setPointSizeF(font.pointSizeF() * 1.15)
            painter.setFont(font)
            painter.drawText(
                self.rect().adjusted(24, 24, -24, -24),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._message,
            )
        painter.end()
