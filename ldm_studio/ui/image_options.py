"""The prompt panel's row for large and seamless images: "Tiling" and "Tiled VAE: Auto / Always / Never".

*Tiling* is part of the request (A1111's, recorded and reused with the image); *Tiled VAE* is an app
setting (``Settings.tiled_vae``) that rides along in the request's extras so the engine hears it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QWidget

from ldm_studio.app.draft import with_image_options
from ldm_studio.engine.request import GenerationRequest

if TYPE_CHECKING:
    from ldm_studio.app.settings import Settings

TILED_VAE_CHOICES = (("Auto", "auto"), ("Always", "always"), ("Never", "never"))
TILING_TIP = (
    "Seamless tiling (A1111's Tiling): the image wraps around at its edges, so copies of it laid side "
    "by side meet without a seam — for textures and patterns."
)
TILED_VAE_TIP = (
    "Decode (and encode) the image tile by tile so large sizes fit in memory. Auto: only when the "
    "image would not fit in the device's free memory; the choice made is saved with the image."
)


class ImageOptions(QWidget):
    changed = Signal()
    tiledVaeChanged = Signal(str)  # the app setting: auto / always / never

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiling = QCheckBox("Tiling")
        self.tiling.setToolTip(TILING_TIP)
        self.tiled_vae = QComboBox()
        for text, mode in TILED_VAE_CHOICES:
            self.tiled_vae.addItem(text, mode)
        self.tiled_vae.setToolTip(TILED_VAE_TIP)
        label = QLabel("Tiled VAE")
        label.setToolTip(TILED_VAE_TIP)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.tiling)
        row.addStretch(1)
        row.addWidget(label)
        row.addWidget(self.tiled_vae)
        self.tiling.toggled.connect(self.changed)
        self.tiled_vae.currentIndexChanged.connect(self.changed)
        self.tiled_vae.currentIndexChanged.connect(self._report_tiled_vae)

    def _report_tiled_vae(self, *_args: object) -> None:
        self.tiledVaeChanged.emit(self.tiled_vae_mode())

    def tiled_vae_mode(self) -> str:
        return str(self.tiled_vae.currentData())

    def set_tiled_vae_mode(self, mode: str) -> None:
        self.tiled_vae.setCurrentIndex(max(0, self.tiled_vae.findData(mode)))

    def apply_to(self, request: GenerationRequest) -> GenerationRequest:
        return with_image_options(request, self.tiling.isChecked(), self.tiled_vae_mode())

    def set_from(self, request: GenerationRequest) -> None:
        """An image's own setting (Tiling); Tiled VAE stays as the app settings say."""
        self.tiling.setChecked(request.tiling)


def bind_image_options(options: ImageOptions, settings: Settings) -> None:
    """Show the saved Tiled VAE setting and keep it saved (the window calls this once)."""
    options.set_tiled_vae_mode(settings.tiled_vae)
    options.tiledVaeChanged.connect(lambda mode: setattr(settings, "tiled_vae", mode))
