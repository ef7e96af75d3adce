"""The finished batch as a row of thumbnails; clicking one shows it large."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import QListView, QListWidget, QListWidgetItem, QWidget

THUMBNAIL = 88


class ResultsStrip(QListWidget):
    imageChosen = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setIconSize(QSize(THUMBNAIL, THUMBNAIL))
        self.setFixedHeight(THUMBNAIL + 30)
        self.setMovement(QListView.Movement.Static)
        self.setSpacing(4)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.currentRowChanged.connect(self._chosen)
        self._images: list[QImage] = []

    def set_images(self, images: list[QImage], tooltips: list[str] | None = None) -> None:
        self.blockSignals(True)
        self.clear()
        self._images = list(images)
        for index, image in enumerate(self._images):
            transform = (
                Qt.TransformationMode.FastTransformation
                if image.width() < THUMBNAIL
                else Qt.TransformationMode.SmoothTransformation
            )
            pixmap = QPixmap.fromImage(image).scaled(
                THUMBNAIL, THUMBNAIL, Qt.AspectRatioMode.KeepAspectRatio, transform
            )
            item = QListWidgetItem(QIcon(pixmap), "")
            if tooltips and index < len(tooltips):
                item.setToolTip(tooltips[index])
            self.addItem(item)
        self.blockSignals(False)
        if self._images:
            self.setCurrentRow(0)

    def image(self, index: int) -> QImage | None:
        return self._images[index] if 0 <= index < len(self._images) else None

    def _chosen(self, row: int) -> None:
        if row >= 0:
            self.imageChosen.emit(row)
