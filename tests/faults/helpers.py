"""Small tools for the fault tests."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QTimer


@dataclass
class RecordingSaver:
    """Stands in for the gallery: remembers every result it was asked to save."""

    results: list[Any] = field(default_factory=list)

    def __call__(self, result: Any) -> list[Path]:
        self.results.append(result)
        return []


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Run the Qt event loop until ``condition()`` holds.

    Not ``qtbot.waitUntil``: it waits in ``QTest.qWait``, which keeps the GIL, so a worker thread
    running torch code barely moves (a 40 ms generation took 0.5-4 s). ``QEventLoop.exec`` lets it go.
    """
    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(2)

    def check() -> None:
        if condition() or time.monotonic() > deadline:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    if not condition():
        raise TimeoutError(f"condition not met within {timeout} s")


def assert_one_readable_sentence(message: str) -> None:
    """What the user reads: one line of words, not a traceback or an exception's repr."""
    assert message and "\n" not in message, message
    assert message[0].isupper() and message.rstrip().endswith("."), message
    assert len(message) < 300, message
    for technical in ("Traceback", "Error(", "torch.", "<class", "alloc_cpu", "enforce fail"):
        assert technical not in message, message


def assert_logged_with_traceback(log_file: Path, message: str) -> None:
    """The message the user saw is in the log file, followed by the traceback that explains it."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text(encoding="utf-8")
    assert message in text, f"not logged: {message!r}"
    after = text[text.index(message) :]
    assert "Traceback (most recent call last)" in after, f"no traceback logged after {message!r}"
