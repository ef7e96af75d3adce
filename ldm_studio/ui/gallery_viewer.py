"""The large viewer: one image fitted to the space, everything it says about itself beside it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.gallery.index import GalleryEntry
from ldm_studio.gallery.metadata import ImageMetadata

SOURCE_NAMES = {
    "ldm-studio": "LDM Studio",
    "a1111": "AUTOMATIC1111",
    "comfyui": "ComfyUI",
    "invokeai": "InvokeAI",
}


class ImageCanvas(QWidget):
    """Paints a pixmap fitted to the widget: crisp pixels when enlarging, smooth when shrinking."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pixmap = QPixmap()
        self.message = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(QSize(200, 200))

    def set_pixmap(self, pixmap: QPixmap, message: str = "") -> None:
        self.pixmap, self.message = pixmap, message
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt override)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("#141518"))
        if self.pixmap.isNull():
            painter.setPen(QColor("#8b8f98"))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message or "No image")
            return
        area = QRectF(self.rect()).adjusted(16, 16, -16, -16)
        size = self.pixmap.deviceIndependentSize().scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRectF(0, 0, size.width(), size.height())
        target.moveCenter(area.center())
        enlarging = target.width() > self.pixmap.deviceIndependentSize().width() * 1.5
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not enlarging)
        painter.drawPixmap(target, self.pixmap, QRectF(self.pixmap.rect()))


def image_size_text(meta: ImageMetadata, width: int, height: int) -> str:
    """The picture's own size, and the generation's where that differs (an upscale, a crop)."""
    text = f"{width} × {height}"
    if meta.width and meta.height and (meta.width, meta.height) != (width, height):
        text += f" (made at {meta.width} × {meta.height})"
    return text


def _heading(text: str) -> QLabel:
    label = QLabel(text.upper())
    label.setObjectName("heading")
    return label


def _selectable(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
    return label


class GalleryViewer(QWidget):
    back_requested = Signal()
    step_requested = Signal(int)  # -1 previous, +1 next in the current results
    reuse_requested = Signal(str)  # "all", "prompt" or "seed"
    favourite_toggled = Signal(bool)
    copy_prompt_requested = Signal()
    show_in_folder_requested = Signal()
    upscale_requested = Signal()

    FIELDS = (
        "Seed",
        "Steps",
        "Sampler",
        "CFG scale",
        "Size",
        "Model",
        "Model hash",
        "Created",
        "Source",
        "File",
    )

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("galleryViewer")
        self.canvas = ImageCanvas()
        self.position = QLabel()
        self.position.setObjectName("hint")

        back = QToolButton(text="←  Grid")
        back.setToolTip("Back to the grid (Esc)")
        back.clicked.connect(self.back_requested)
        previous = QToolButton(text="‹")
        previous.setToolTip("Previous image (←)")
        previous.clicked.connect(lambda: self.step_requested.emit(-1))
        following = QToolButton(text="›")
        following.setToolTip("Next image (→)")
        following.clicked.connect(lambda: self.step_requested.emit(1))
        self.star = QToolButton(text="☆  Favourite")
        self.star.setCheckable(True)
        self.star.toggled.connect(self._star_changed)

        for button in (back, previous, following, self.star):
            button.setObjectName("action")
        for button in (previous, following):
            button.setFixedWidth(34)
        self.position.setMinimumWidth(90)
        self.position.setAlignment(Qt.AlignmentFlag.AlignCenter)
        bar = QHBoxLayout()
        bar.setContentsMargins(10, 6, 10, 6)
        bar.setSpacing(6)
        bar.addWidget(back)
        bar.addSpacing(12)
        for widget in (previous, self.position, following):
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.star)

        left = QVBoxLayout()
        left.setContentsMargins(0, 0, 0, 0)
        left.setSpacing(0)
        left.addLayout(bar)
        left.addWidget(self.canvas, 1)

        self.prompt = _selectable()
        self.negative = _selectable()
        self.values: dict[str, QLabel] = {}
        grid = QGridLayout()
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(6)
        for row, name in enumerate(self.FIELDS):
            key = QLabel(name)
            key.setObjectName("hint")
            grid.addWidget(key, row, 0, Qt.AlignmentFlag.AlignTop)
            self.values[name] = _selectable()
            grid.addWidget(self.values[name], row, 1)
        grid.setColumnStretch(1, 1)

        reuse_all = QPushButton("Reuse all")
        reuse_all.setObjectName("primary")
        reuse_all.setToolTip("Fill the prompt panel with every setting of this image")
        reuse_all.clicked.connect(lambda: self.reuse_requested.emit("all"))
        reuse_prompt = QPushButton("Prompt only")
        reuse_prompt.clicked.connect(lambda: self.reuse_requested.emit("prompt"))
        reuse_seed = QPushButton("Seed only")
        reuse_seed.clicked.connect(lambda: self.reuse_requested.emit("seed"))
        reuse_row = QHBoxLayout()
        for button in (reuse_all, reuse_prompt, reuse_seed):
            reuse_row.addWidget(button)
        copy_prompt = QPushButton("Copy prompt")
        copy_prompt.clicked.connect(self.copy_prompt_requested)
        show_folder = QPushButton("Show in folder")
        show_folder.clicked.connect(self.show_in_folder_requested)
        upscale = QPushButton("Upscale…")
        upscale.setToolTip("Enlarge this image with an upscaler into a new gallery image")
        upscale.clicked.connect(self.upscale_requested)
        file_row = QHBoxLayout()
        file_row.addWidget(copy_prompt)
        file_row.addWidget(show_folder)
        file_row.addWidget(upscale)

        details = QWidget()
        details.setObjectName("viewerDetails")
        column = QVBoxLayout(details)
        column.setContentsMargins(16, 16, 16, 16)
        column.setSpacing(8)
        column.addWidget(_heading("Prompt"))
        column.addWidget(self.prompt)
        self.negative_heading = _heading("Negative prompt")
        column.addSpacing(6)
        column.addWidget(self.negative_heading)
        column.addWidget(self.negative)
        column.addSpacing(6)
        column.addWidget(_heading("Settings"))
        column.addLayout(grid)
        column.addSpacing(10)
        column.addLayout(reuse_row)
        column.addLayout(file_row)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(details)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setFixedWidth(360)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(left, 1)
        layout.addWidget(scroll)

        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for key, handler in (
            (Qt.Key.Key_Left, lambda: self.step_requested.emit(-1)),
            (Qt.Key.Key_Right, lambda: self.step_requested.emit(1)),
            (Qt.Key.Key_Escape, self.back_requested.emit),
        ):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(context)
            shortcut.activated.connect(handler)
        self.metadata: ImageMetadata | None = None
        self.entry: GalleryEntry | None = None

    def show_image(self, entry: GalleryEntry, metadata: ImageMetadata | None, row: int, total: int) -> None:
        self.entry, self.metadata = entry, metadata
        pixmap = QPixmap(str(entry.path))
        self.canvas.set_pixmap(pixmap, "" if not pixmap.isNull() else f"Cannot read {entry.path.name}")
        self.position.setText(f"{row + 1:,} / {total:,}")
        meta = metadata or ImageMetadata()
        self.prompt.setText(meta.prompt or "—")
        self.negative.setText(meta.negative_prompt)
        self.negative.setVisible(bool(meta.negative_prompt))
        self.negative_heading.setVisible(bool(meta.negative_prompt))
        size = image_size_text(meta, pixmap.width(), pixmap.height()) if not pixmap.isNull() else "—"
        created = datetime.fromtimestamp(meta.created or entry.created).strftime("%Y-%m-%d %H:%M:%S")
        values = {
            "Seed": meta.seed,
            "Steps": meta.steps,
            # with A1111's schedule type where it is not the sampler's own ("DPM++ 2M, Karras")
            "Sampler": meta.sampler
            if meta.schedule in (None, "Automatic")
            else f"{meta.sampler}, {meta.schedule}",
            "CFG scale": f"{meta.guidance:g}" if meta.guidance is not None else None,
            "Size": size,
            "Model": meta.model_name,
            "Model hash": meta.model_hash,
            "Created": created,
            "Source": SOURCE_NAMES.get(meta.source or "", "no metadata"),
            "File": Path(entry.path).name,
        }
        for name, value in values.items():
            self.values[name].setText("—" if value in (None, "") else str(value))
        self.values["File"].setToolTip(str(entry.path))
        self.star.blockSignals(True)
        self.star.setChecked(entry.favourite)
        self.star.setText("★  Favourite" if entry.favourite else "☆  Favourite")
        self.star.blockSignals(False)

    def _star_changed(self, checked: bool) -> None:
        self.star.setText("★  Favourite" if checked else "☆  Favourite")
        self.favourite_toggled.emit(checked)
