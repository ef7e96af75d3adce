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
        self._pair: tuple[QImage, QImage] | None = None  # side-by-side: noisy latent | predicted x0
        self._message = ""
        self.setMinimumSize(256, 256)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def image(self) -> QImage | None:
        return self._image

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self._pair = None
        self.update()

    def set_pair(self, left: QImage, right: QImage) -> None:
        """Two images side by side with captions: the noisy latent and the predicted clean image."""
        self._image = right
        self._pair = (left, right)
        self.update()

    def set_message(self, message: str) -> None:
        self._message = message
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(640, 640)

    def image_rect(self, area: QRect | None = None, image: QImage | None = None) -> QRect:
        """Where an image is drawn: the largest centred rectangle with its aspect ratio."""
        image = image or self._image
        if image is None or image.isNull():
            return QRect()
        margin = 12
        available = (area or self.rect()).adjusted(margin, margin, -margin, -margin)
        size = image.size().scaled(available.size(), Qt.AspectRatioMode.KeepAspectRatio)
        left = available.left() + (available.width() - size.width()) // 2
        top = available.top() + (available.height() - size.height()) // 2
        return QRect(left, top, size.width(), size.height())

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(30, 31, 34))
        if self._pair is not None:
            half = self.rect().width() // 2
            captions = ("Noisy latent", "Predicted image (x0)")
            for column, (image, caption) in enumerate(zip(self._pair, captions, strict=True)):
                area = QRect(column * half, 24, half, self.rect().height() - 24)
                self._draw(painter, image, self.image_rect(area, image))
                painter.setPen(QColor(170, 172, 178))
                painter.drawText(QRect(column * half, 4, half, 20), Qt.AlignmentFlag.AlignCenter, caption)
        elif self._image is not None and not self._image.isNull():
            self._draw(painter, self._image, self.image_rect())
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

    @staticmethod
    def _draw(painter: QPainter, image: QImage, target: QRect) -> None:
        enlarging = target.width() > image.width()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not enlarging)
        painter.fillRect(target.adjusted(-1, -1, 1, 1), QColor(60, 62, 66))
        painter.drawImage(target, image)
