"""“Start from an image”: the source picture, strength, resize mode and inpainting mask of a request."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragLeaveEvent, QDropEvent, QImageReader
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.paths import user_dirs
from ldm_studio.ui import mask_ops
from ldm_studio.ui.mask_canvas import grey_image, opaque_image
from ldm_studio.ui.mask_editor import MaskEditor, coverage_text
from ldm_studio.ui.outpaint_box import OutpaintBox
from ldm_studio.ui.section_header import SectionHeader
from ldm_studio.ui.source_image import IMAGE_SUFFIXES, THUMBNAIL, ImageDropZone, image_paths, read_image
from ldm_studio.ui.source_settings import DEFAULT_STRENGTH, SourceSettings, without_source

RESIZE_MODES = (("Stretch", "resize"), ("Crop to fill", "crop"), ("Pad", "pad"))

PANEL_STYLE = """
QFrame#dropZone { border: 1px dashed #4a4f5a; border-radius: 6px; background: #202226; }
QFrame#dropZone[hovering="true"] { border: 1px solid #6c8cff; background: #262a36; }
QLabel#thumbnail { background: #17181b; border-radius: 3px; }
QLabel#sourceName { font-weight: 600; }
QLabel#sourceError { color: #ff9a90; }
QToolButton#clearButton { border: none; color: #9aa0aa; font-size: 13px; padding: 0 4px; }
QToolButton#clearButton:hover { color: #ffffff; }
"""


class SourcePanel(QWidget):
    """A collapsible section: pick or drop an image, set strength and fit, paint an inpainting mask."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image_path: Path | None = None
        self._image_size = QSize()
        self._mask_path: Path | None = None
        self._mask_share = 0.0
        self._feather = 0.0
        self._invert = False
        self._last_folder = ""
        self.mask_editor: MaskEditor | None = None
        self.setStyleSheet(PANEL_STYLE)
        self.setAcceptDrops(True)
        # Never taller than its contents: spare room in the sidebar goes elsewhere.
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self._build()
        self._lay_out()
        self.set_expanded(False)
        self._sync()

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.header = SectionHeader("Start from an image")
        self.header.toggled.connect(self.set_expanded)
        self.summary = QLabel()
        self.summary.setObjectName("hint")

        self.drop_zone = ImageDropZone()
        # The well's parts stay reachable as the panel's own, as they were before it was split out.
        self.thumbnail = self.drop_zone.thumbnail
        self.name_label = self.drop_zone.name_label
        self.size_label = self.drop_zone.size_label
        self.empty_face = self.drop_zone.empty_face
        self.image_face = self.drop_zone.image_face
        self.choose_button = self.drop_zone.choose_button
        self.choose_button.clicked.connect(self.choose_image)
        self.replace_button = self.drop_zone.replace_button
        self.replace_button.clicked.connect(self.choose_image)
        self.clear_button = self.drop_zone.clear_button
        self.clear_button.clicked.connect(self.clear)

        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setRange(0, 100)
        self.strength_box = QDoubleSpinBox()
        self.strength_box.setRange(0.0, 1.0)
        self.strength_box.setSingleStep(0.05)
        self.strength_box.setDecimals(2)
        tip = "How much may change: 0 keeps the image, 1 ignores it (pure noise)"
        for control in (self.strength_slider, self.strength_box):
            control.setToolTip(tip)
        self.strength_slider.valueChanged.connect(lambda value: self.strength_box.setValue(value / 100))
        self.strength_box.valueChanged.connect(self._strength_edited)
        self.strength_box.setValue(DEFAULT_STRENGTH)

        self.resize_mode = QComboBox()
        for label, mode in RESIZE_MODES:
            self.resize_mode.addItem(label, mode)
        self.resize_mode.setToolTip(
            "When the image's size differs from the output size: stretch it, fill and crop the middle, "
            "or fit it inside with borders"
        )
        self.resize_mode.currentIndexChanged.connect(self._emit_changed)

        self.inpaint_button = QPushButton("Inpaint…")
        self.inpaint_button.setToolTip("Paint the area to repaint; the rest of the image is kept")
        self.inpaint_button.clicked.connect(self.open_mask_editor)
        self.mask_label = QLabel()
        self.mask_label.setObjectName("hint")
        self.clear_mask_button = QToolButton()
        self.clear_mask_button.setObjectName("clearButton")
        self.clear_mask_button.setText("✕")
        self.clear_mask_button.setToolTip("Remove the mask (plain image to image)")
        self.clear_mask_button.clicked.connect(self.clear_mask)

        self.outpaint_box = OutpaintBox()
        self.outpaint_box.changed.connect(self._emit_changed)
        self.error_label = QLabel()
        self.error_label.setObjectName("sourceError")
        self.error_label.setWordWrap(True)

    def _lay_out(self) -> None:
        header_row = QHBoxLayout()
        header_row.setContentsMargins(0, 0, 0, 0)
        header_row.addWidget(self.header)
        header_row.addWidget(self.summary, 1)

        # Strength, fit and mask only mean something once there is an image: hidden until then.
        self.controls = QWidget()
        controls = QGridLayout(self.controls)
        controls.setContentsMargins(0, 0, 0, 0)
        controls.setHorizontalSpacing(8)
        controls.setVerticalSpacing(6)
        controls.addWidget(QLabel("Strength"), 0, 0)
        controls.addWidget(self.strength_slider, 0, 1)
        controls.addWidget(self.strength_box, 0, 2)
        controls.addWidget(QLabel("Fit"), 1, 0)
        controls.addWidget(self.resize_mode, 1, 1, 1, 2)
        mask_row = QHBoxLayout()
        mask_row.addWidget(self.inpaint_button)
        mask_row.addWidget(self.mask_label, 1)
        mask_row.addWidget(self.clear_mask_button)
        controls.addLayout(mask_row, 2, 0, 1, 3)
        controls.addWidget(QLabel("Outpaint"), 3, 0)
        controls.addWidget(self.outpaint_box, 3, 1, 1, 2)
        controls.setColumnStretch(1, 1)

        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 2, 0, 0)
        body.setSpacing(6)
        body.addWidget(self.drop_zone)
        body.addWidget(self.controls)
        body.addWidget(self.error_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(header_row)
        layout.addWidget(self.body)

    # ---- state out --------------------------------------------------------------------------
    def source(self) -> SourceSettings | None:
        if self._image_path is None:
            return None
        return SourceSettings(
            image_path=str(self._image_path),
            strength=round(self.strength_box.value(), 2),
            resize_mode=self.resize_mode.currentData(),
            mask_path=str(self._mask_path) if self._mask_path else "",
            feather=self._feather,
            invert=self._invert,
            outpaint=self.outpaint_box.outpaint(),
        )

    def apply_to(self, request: GenerationRequest) -> GenerationRequest:
        """The request with this panel's source filled in, or stripped of any source when none is set."""
        settings = self.source()
        return settings.apply_to(request, self.image_size()) if settings else without_source(request)

    def image_size(self) -> tuple[int, int] | None:
        if self._image_path is None:
            return None
        return self._image_size.width(), self._image_size.height()

    def is_expanded(self) -> bool:
        return self.header.isChecked()

    # ---- state in ---------------------------------------------------------------------------
    def set_expanded(self, expanded: bool) -> None:
        self.header.show_open(expanded)
        self.body.setVisible(expanded)
        self._sync_summary()

    def set_image(self, path: str | Path) -> bool:
        """Use this image; on failure keep the current one, say why in the panel and return False."""
        path = Path(path).expanduser().absolute()
        try:
            full_size = QImageReader(str(path)).size()
            thumbnail = read_image(path, QSize(THUMBNAIL * 2, THUMBNAIL * 2))
        except ValueError as error:
            self._show_error(f"{path.name} cannot be used as a source image ({error}).")
            return False
        if not full_size.isValid():
            full_size = thumbnail.size()
        changed_image = path != self._image_path
        self._image_path = path
        self._image_size = full_size
        self._last_folder = str(path.parent)
        if changed_image:
            self._drop_mask()  # a mask belongs to the image it was painted on
        self.drop_zone.show_thumbnail(thumbnail)
        self._show_error("")
        self.set_expanded(True)
        self._sync()
        self.changed.emit()
        return True

    def set_source(self, settings: SourceSettings | None) -> bool:
        """Show a source (e.g. from a reused gallery image); False when its files are gone."""
        if settings is None:
            self.clear()
            return True
        if not self.set_image(settings.image_path):
            return False
        self.strength_box.setValue(settings.strength)
        index = self.resize_mode.findData(settings.resize_mode)
        self.resize_mode.setCurrentIndex(max(0, index))
        self.outpaint_box.set_outpaint(settings.outpaint)
        if settings.mask_path:
            try:
                mask = mask_ops.read_mask(Path(settings.mask_path), self.image_size() or (1, 1))
            except OSError as error:
                self._show_error(f"The mask {Path(settings.mask_path).name} cannot be read ({error}).")
                return False
            self._mask_path = Path(settings.mask_path)
            self._mask_share = mask_ops.coverage(mask_ops.inverted(mask) if settings.invert else mask)
            self._feather = settings.feather
            self._invert = settings.invert
        self._sync()
        self.changed.emit()
        return True

    def clear(self) -> None:
        if self._image_path is None:
            return
        self._image_path = None
        self._image_size = QSize()
        self._drop_mask()
        self.drop_zone.clear_thumbnail()
        self._show_error("")
        self._sync()
        self.changed.emit()

    def clear_mask(self) -> None:
        if self._mask_path is not None:
            self._drop_mask()
            self._sync()
            self.changed.emit()

    # ---- choosing an image ------------------------------------------------------------------
    def choose_image(self) -> None:
        path = self._ask_for_image()
        if path:
            self.set_image(path)

    def _ask_for_image(self) -> str:
        patterns = " ".join(f"*{suffix}" for suffix in IMAGE_SUFFIXES)
        path, _ = QFileDialog.getOpenFileName(
            self, "Start from an image", self._last_folder, f"Images ({patterns})"
        )
        return path

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if image_paths(event):
            event.acceptProposedAction()
            self.drop_zone.set_hovering(True)

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:  # noqa: N802 (Qt API)
        self.drop_zone.set_hovering(False)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        self.drop_zone.set_hovering(False)
        paths = image_paths(event)
        if paths:
            event.acceptProposedAction()
            self.set_image(paths[0])

    # ---- the mask ---------------------------------------------------------------------------
    def open_mask_editor(self) -> MaskEditor | None:
        """Open the mask editor (window-modal, not blocking); accepting it saves the mask."""
        if self._image_path is None:
            return None
        try:
            image = opaque_image(read_image(self._image_path))
        except ValueError as error:
            self._show_error(f"{self._image_path.name} cannot be read any more ({error}).")
            return None
        editor = MaskEditor(image, feather=self._feather, parent=self)
        if self._mask_path is not None:
            try:
                mask = mask_ops.read_mask(self._mask_path, (image.width(), image.height()))
            except OSError as error:
                self._show_error(f"The mask {self._mask_path.name} cannot be read ({error}).")
            else:
                # The editor always shows what will be repainted, so an inverted mask is baked in here.
                editor.set_mask(grey_image(mask_ops.inverted(mask) if self._invert else mask))
        editor.accepted.connect(self._mask_accepted)
        editor.finished.connect(editor.deleteLater)
        editor.finished.connect(self._forget_editor)
        self.mask_editor = editor
        editor.open()
        return editor

    def _forget_editor(self) -> None:
        self.mask_editor = None

    def _mask_accepted(self) -> None:
        editor = self.sender()
        if not isinstance(editor, MaskEditor):
            return
        mask = editor.mask_array()
        share = mask_ops.coverage(mask)
        if share == 0:
            self._drop_mask()
        else:
            try:
                self._mask_path = mask_ops.save_mask(mask, user_dirs().cache / "masks")
            except OSError as error:
                self._show_error(f"The mask could not be saved ({error}).")
                return
            self._mask_share = share
            self._feather = editor.feather()
            self._invert = False
        self._sync()
        self.changed.emit()

    def _drop_mask(self) -> None:
        self._mask_path = None
        self._mask_share = 0.0
        self._feather = 0.0
        self._invert = False

    # ---- showing state ----------------------------------------------------------------------
    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))
        if message:
            self.set_expanded(True)

    def _strength_edited(self, value: float) -> None:
        self.strength_slider.blockSignals(True)
        self.strength_slider.setValue(round(value * 100))
        self.strength_slider.blockSignals(False)
        self._emit_changed()

    def _emit_changed(self) -> None:
        self._sync_summary()
        if self._image_path is not None:
            self.changed.emit()

    def _sync(self) -> None:
        has_image = self._image_path is not None
        self.drop_zone.show_file(self._image_path, self._image_size)
        self.outpaint_box.set_image_size(self.image_size())
        self.controls.setVisible(has_image)
        has_mask = self._mask_path is not None
        self.inpaint_button.setText("Edit mask…" if has_mask else "Inpaint…")
        self.clear_mask_button.setVisible(has_mask)
        if has_mask:
            feather = f" · feather {self._feather:g} px" if self._feather else ""
            self.mask_label.setText(f"Mask: {coverage_text(self._mask_share)} of the image{feather}")
        else:
            self.mask_label.setText("No mask: the whole image is reworked" if has_image else "")
        self._sync_summary()

    def _sync_summary(self) -> None:
        """A collapsed section still says that an image is in use, so it is never forgotten."""
        if self._image_path is None or self.is_expanded():
            self.summary.setText("")
            return
        parts = [self._image_path.name, f"strength {self.strength_box.value():.2f}"]
        if self._mask_path is not None:
            parts.append("mask")
        if self.outpaint_box.outpaint() is not None:
            parts.append("outpaint")
        self.summary.setText(" · ".join(parts))
