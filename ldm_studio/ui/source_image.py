"""The source panel's image well: which files it takes, how they are read, and how the chosen one is shown."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage, QImageReader, QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.ui.mask_canvas import opaque_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
THUMBNAIL = 84


def read_image(path: Path, fit_in: QSize | None = None) -> QImage:
    """Read with Qt, optionally scaled down while decoding (cheap thumbnails of big photos).
    EXIF rotation is applied, as the engine does (ImageOps.exif_transpose), so masks line up."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    if fit_in is not None and reader.size().isValid():
        size = reader.size()
        if size.width() > fit_in.width() or size.height() > fit_in.height():
            reader.setScaledSize(size.scaled(fit_in, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        raise ValueError(reader.errorString())
    return image


def image_paths(event: QDragEnterEvent | QDropEvent) -> list[Path]:
    mime = event.mimeData()
    if not mime.hasUrls():
        return []
    paths = [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]
    return [path for path in paths if path.suffix.lower() in IMAGE_SUFFIXES]


class ImageDropZone(QFrame):
    """Two faces, one shown at a time: an invitation when empty, the chosen image when filled.

    Only shows; the panel around it reads files, takes drops and reacts to its buttons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dropZone")
        self.thumbnail = QLabel()
        self.thumbnail.setObjectName("thumbnail")
        self.thumbnail.setFixedSize(THUMBNAIL, THUMBNAIL)
        self.thumbnail.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.name_label = QLabel()
        self.name_label.setObjectName("sourceName")
        self.size_label = QLabel()
        self.size_label.setObjectName("hint")
        self.empty_label = QLabel("Drop a PNG, JPEG or WebP here, or")
        self.empty_label.setObjectName("hint")
        self.choose_button = QPushButton("Choose…")
        self.replace_button = QPushButton("Replace…")
        self.clear_button = QToolButton()
        self.clear_button.setObjectName("clearButton")
        self.clear_button.setText("✕")
        self.clear_button.setToolTip("Stop using this image (generate from text only)")
        self._lay_out()

    def _lay_out(self) -> None:
        self.empty_face = QWidget()
        empty = QHBoxLayout(self.empty_face)
        empty.setContentsMargins(4, 10, 4, 10)
        empty.addStretch(1)
        empty.addWidget(self.empty_label)
        empty.addWidget(self.choose_button)
        empty.addStretch(1)
        self.image_face = QWidget()
        filled = QGridLayout(self.image_face)
        filled.setContentsMargins(0, 0, 0, 0)
        filled.setHorizontalSpacing(10)
        filled.setVerticalSpacing(2)
        filled.addWidget(self.thumbnail, 0, 0, 3, 1)
        filled.addWidget(self.name_label, 0, 1)
        filled.addWidget(self.clear_button, 0, 2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        filled.addWidget(self.size_label, 1, 1, Qt.AlignmentFlag.AlignTop)
        filled.addWidget(self.replace_button, 2, 1, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom)
        filled.setColumnStretch(1, 1)
        filled.setRowStretch(1, 1)
        zone = QVBoxLayout(self)
        zone.setContentsMargins(8, 8, 8, 8)
        zone.addWidget(self.empty_face)
        zone.addWidget(self.image_face)

    def show_file(self, path: Path | None, size: QSize) -> None:
        """The filled face naming ``path`` and its full size, or the empty face for None."""
        self.image_face.setVisible(path is not None)
        self.empty_face.setVisible(path is None)
        if path is not None:
            self.name_label.setText(path.name)
            self.name_label.setToolTip(str(path))
            self.size_label.setText(f"{size.width()} × {size.height()} px")

    def show_thumbnail(self, image: QImage) -> None:
        image = opaque_image(image)
        box = QSize(THUMBNAIL - 4, THUMBNAIL - 4)
        enlarging = image.width() < box.width() and image.height() < box.height()
        # Small pictures (a 32 px emoji) grow with crisp pixels; photos shrink smoothly.
        mode = (
            Qt.TransformationMode.FastTransformation
            if enlarging
            else Qt.TransformationMode.SmoothTransformation
        )
        scaled = image.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, mode)
        self.thumbnail.setPixmap(QPixmap.fromImage(scaled))

    def clear_thumbnail(self) -> None:
        self.thumbnail.clear()

    def set_hovering(self, hovering: bool) -> None:
        """Highlight while a usable file is dragged over the panel (the style sheet keys on it)."""
        self.setProperty("hovering", hovering)
        self.style().unpolish(self)
        self.style().polish(self)
