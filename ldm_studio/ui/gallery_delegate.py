"""How one gallery tile is painted: the image fitted in a rounded cell, a star, the selection ring."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from ldm_studio.app.gallery_model import FavouriteRole, ThumbnailStateRole
from ldm_studio.ui.style import ACCENT

TILE_BACKGROUND = QColor("#1b1c20")
TILE_HOVER = QColor("#2b2e36")
PLACEHOLDER = QColor("#2a2c32")
STAR = QColor("#f5c542")
RADIUS = 6.0


def star_polygon(centre: QPointF, outer: float) -> QPolygonF:
    import math

    inner = outer * 0.45
    points = []
    for step in range(10):
        radius = outer if step % 2 == 0 else inner
        angle = -math.pi / 2 + step * math.pi / 5
        points.append(QPointF(centre.x() + radius * math.cos(angle), centre.y() + radius * math.sin(angle)))
    return QPolygonF(points)


class GalleryTileDelegate(QStyledItemDelegate):
    def __init__(self, tile: int = 168, parent=None) -> None:
        super().__init__(parent)
        self.tile = tile

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(self.tile, self.tile)

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        cell = QRectF(option.rect).adjusted(3, 3, -3, -3)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)

        clip = QPainterPath()
        clip.addRoundedRect(cell, RADIUS, RADIUS)
        painter.fillPath(clip, TILE_HOVER if hovered and not selected else TILE_BACKGROUND)

        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            inner = cell.adjusted(4, 4, -4, -4)
            size = pixmap.size().scaled(inner.size().toSize(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRectF(0, 0, size.width(), size.height())
            target.moveCenter(inner.center())
            image_clip = QPainterPath()
            image_clip.addRoundedRect(target, RADIUS - 2, RADIUS - 2)
            painter.setClipPath(image_clip)
            # small images (a 32 px emoji) stay crisp when enlarged; larger ones are smoothed
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, target.width() <= pixmap.width())
            painter.drawPixmap(target, pixmap, QRectF(pixmap.rect()))
            painter.setClipping(False)
        else:
            self._paint_placeholder(painter, cell, index.data(ThumbnailStateRole) == "failed")

        if index.data(FavouriteRole):
            centre = QPointF(cell.right() - 16, cell.top() + 16)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 140))
            painter.drawEllipse(centre, 12, 12)
            painter.setBrush(STAR)
            painter.drawPolygon(star_polygon(centre, 8))

        if selected:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor(ACCENT), 3))
            painter.drawRoundedRect(cell.adjusted(1.5, 1.5, -1.5, -1.5), RADIUS, RADIUS)
        painter.restore()

    def _paint_placeholder(self, painter: QPainter, cell: QRectF, failed: bool) -> None:
        inner = cell.adjusted(10, 10, -10, -10)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(PLACEHOLDER)
        painter.drawRoundedRect(inner, RADIUS, RADIUS)
        if failed:
            painter.setPen(QColor("#8b8f98"))
            font = QFont(painter.font())
            font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
            painter.setFont(font)
            painter.drawText(inner, Qt.AlignmentFlag.AlignCenter, "cannot\nread image")
