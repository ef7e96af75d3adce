"""A one-line progress bar on stderr for the command line (stdout stays for results)."""

from __future__ import annotations

import sys
from typing import TextIO

WIDTH = 30


class ProgressBar:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._shown = False

    def update(self, done: int, total: int, elapsed: float, label: str = "") -> None:
        filled = int(WIDTH * done / max(total, 1))
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 else 0.0
        bar = "#" * filled + "." * (WIDTH - filled)
        line = f"\r{label}[{bar}] {done}/{total} {rate:.1f} it/s {left:.0f}s left "
        self.stream.write(line)
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False
