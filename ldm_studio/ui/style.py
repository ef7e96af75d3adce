"""The look: Qt's Fusion style with a dark palette that keeps images the brightest thing on screen."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

ACCENT = "#6c8cff"

STYLE_SHEET = f"""
QLabel#heading {{ color: #8b8f98; font-weight: 600; letter-spacing: 1px; font-size: 11px; }}
QLabel#hint {{ color: #8b8f98; }}
QLabel#modelStatus {{ color: #c9ccd3; }}
QLabel#placement {{ color: #9aa0aa; padding: 0 6px; }}
QPushButton#primary {{
    background: {ACCENT}; color: white; font-weight: 600; border: none; border-radius: 5px;
    padding: 8px 14px;
}}
QPushButton#primary:hover {{ background: #7f9bff; }}
QPushButton#primary:disabled {{ background: #3a3f4b; color: #80848c; }}
QToolButton#chip {{
    background: #2d3038; border: 1px solid #3a3e48; border-radius: 10px; padding: 2px 8px; color: #d4d7de;
}}
QToolButton#chip:hover {{ border-color: {ACCENT}; }}
QWidget#bannerBox {{ background: #4a2a2a; border: 1px solid #7a3b3b; border-radius: 5px; }}
QWidget#bannerBox QLabel {{ color: #ffd9d6; }}
QWidget#bannerBox QToolButton {{ border: none; color: #ffd9d6; }}
QProgressBar {{ border: 1px solid #3a3e48; border-radius: 4px; text-align: center; height: 20px; }}
QProgressBar::chunk {{ background: {ACCENT}; border-radius: 3px; }}
QPlainTextEdit, QLineEdit, QSpinBox, QDoubleSpinBox, QComboBox {{ padding: 3px; }}
QLabel#tokenCount {{ color: #8b8f98; font-size: 11px; padding-right: 2px; }}
QLabel#tokenCount[long="true"] {{ color: {ACCENT}; }}
QLabel#promptWarning {{
    color: #ffd27a; background: #3a3220; border: 1px solid #6b5a2a; border-radius: 4px; padding: 4px 6px;
}}
QLabel#loraProblem {{ color: #ffc46b; }}
QWidget#loraRow {{ background: #2a2d34; border-radius: 4px; }}
QFrame#networkPicker {{ background: #25272c; border: 1px solid #454a57; border-radius: 6px; }}
QListWidget#networkList {{ background: #1c1d21; border: 1px solid #30333b; border-radius: 4px; }}
QListWidget#networkList::item {{ padding: 2px; border-radius: 4px; }}
QListWidget#networkList::item:hover {{ background: #2b2f3a; }}
QListWidget#networkList::item:selected {{ background: #33405f; color: #ffffff; }}
QLabel#networkTitle {{ font-weight: 600; font-size: 13px; }}
"""


def apply_style(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#25272c",
        QPalette.ColorRole.WindowText: "#e3e5ea",
        QPalette.ColorRole.Base: "#1c1d21",
        QPalette.ColorRole.AlternateBase: "#2a2c31",
        QPalette.ColorRole.ToolTipBase: "#2f3239",
        QPalette.ColorRole.ToolTipText: "#e3e5ea",
        QPalette.ColorRole.Text: "#e3e5ea",
        QPalette.ColorRole.Button: "#30333a",
        QPalette.ColorRole.ButtonText: "#e3e5ea",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.PlaceholderText: "#7d818a",
        QPalette.ColorRole.Link: ACCENT,
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b6f78"))
    app.setPalette(palette)
    app.setStyleSheet(STYLE_SHEET)


# The gallery tab's own look, on top of the application style sheet.
GALLERY_STYLE = f"""
QWidget#galleryToolbar, QWidget#galleryFooter {{ background: #212328; }}
QWidget#galleryToolbar {{ border-bottom: 1px solid #2e3138; }}
QWidget#galleryFooter {{ border-top: 1px solid #2e3138; }}
QLineEdit#gallerySearch {{
    background: #17181c; border: 1px solid #363a44; border-radius: 14px; padding: 4px 12px; min-height: 20px;
}}
QLineEdit#gallerySearch:focus {{ border-color: {ACCENT}; }}
QListView#galleryGrid, QWidget#galleryEmpty {{ background: #16171a; border: none; }}
QToolButton#filterToggle {{
    background: #2b2e35; border: 1px solid #3a3e48; border-radius: 12px; padding: 3px 10px;
}}
QToolButton#filterToggle:checked {{ background: #4a3f1e; border-color: #f5c542; color: #ffe39a; }}
QToolButton#action {{ border: 1px solid transparent; border-radius: 4px; padding: 4px 9px; }}
QToolButton#action:hover {{ background: #30333b; border-color: #3a3e48; }}
QToolButton#action:disabled {{ color: #5c6068; }}
QToolButton#danger {{ border: 1px solid transparent; border-radius: 4px; padding: 4px 9px; color: #ff9b93; }}
QToolButton#danger:hover {{ background: #4a2a2a; }}
QToolButton#danger:disabled {{ color: #5c6068; }}
QWidget#undoBar {{ background: #2d3550; border-top: 1px solid #45507a; }}
QLabel#galleryEmptyText {{ color: #7d818a; font-size: 15px; }}
QWidget#viewerDetails {{ background: #1f2125; }}
"""
