"""The preview modes beyond Fast / Full / Off in the prompt panel's Preview box, the line under it that
says which preview is in use and why ("Full preview: decode is 9% of a step"), and the Draft decode
switch (the final image through the tiny decoder)."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QWidget

TOOLTIP = (
    "Auto: a Full decode every step where it costs under 15% of a step, else the tiny decoder where one "
    "is installed for the model's family, else Fast (measured on the model's first generation).\n"
    "Tiny decoder: a TAESD-family decoder every step, the real look at a small cost.\n"
    "Fast: a colour projection of the latent, every step. Full: a real VAE decode every N steps."
)
DRAFT_TIP = (
    "Decode the saved image with the model family's tiny decoder instead of the VAE: much faster, "
    "a little softer. Recorded in the image's metadata (VAE: …). Off: the full VAE, as always."
)


class PreviewExtras(QWidget):
    """The why line and the Draft decode switch, under the Preview box."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.reason = QLabel("")
        self.reason.setObjectName("hint")
        self.reason.setWordWrap(True)
        self.reason.setToolTip("Which preview the next generation shows, and why")
        self.draft = QCheckBox("Draft decode")
        self.draft.setToolTip(DRAFT_TIP)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.reason, 1)
        layout.addWidget(self.draft)

    def setText(self, text: str) -> None:  # noqa: N802 - QLabel's name: session signals connect here
        self.reason.setText(text)


def extend_preview_modes(combo: QComboBox) -> PreviewExtras:
    """Add Auto (first) and Tiny decoder to ``combo``; returns the row to put under it."""
    combo.insertItem(0, "Auto (by cost)", "auto")
    combo.insertItem(combo.findData("full") + 1, "Tiny decoder", "tiny")
    combo.setToolTip(TOOLTIP)
    return PreviewExtras()
