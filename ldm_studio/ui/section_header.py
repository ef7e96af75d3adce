"""The header of a foldable sidebar section ("Start from an image", "Hires fix"): a checkable arrow
button whose state the section sets without hearing its own toggle back."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QToolButton

SECTION_HEADER_STYLE = (
    "QToolButton#sectionHeader { border: none; font-weight: 600; color: #c9ccd3; padding: 2px 0; }"
)


class SectionHeader(QToolButton):
    def __init__(self, title: str) -> None:
        super().__init__()
        self.setObjectName("sectionHeader")
        self.setText(title)
        self.setCheckable(True)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setStyleSheet(SECTION_HEADER_STYLE)

    def show_open(self, expanded: bool) -> None:
        """Show the section as open or closed without emitting ``toggled`` (the section asked for it)."""
        self.blockSignals(True)
        self.setChecked(expanded)
        self.blockSignals(False)
        self.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
