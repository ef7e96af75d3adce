import sys

from PySide6.QtWidgets import QWidget


def test_qt_calls_do_not_leak_references_to_none(qtbot):
    """PySide6 6.12.0 dropped a reference to None on every void call until the app died
    ('none_dealloc'); pyproject excludes it, and this catches any release that does it again."""
    widget = QWidget()
    qtbot.addWidget(widget)
    before = sys.getrefcount(None)
    for _ in range(500):
        widget.setVisible(False)
    assert sys.getrefcount(None) - before > -50
