"""A small loss curve painted with QPainter: the raw losses faint, their running mean in the accent colour.

The y axis is logarithmic (diffusion losses are noisy and fall by factors, not by amounts); the x axis
spans the whole run, so the line grows to the right as training goes on. No plotting library.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

ACCENT = QColor("#6c8cff")
RAW = QColor(150, 155, 165, 110)
GRID = QColor(255, 255, 255, 22)
TEXT = QColor("#8b8f98")


def running_mean(values: Sequence[float], window: int) -> list[float]:
    """The mean of each value and up to ``window - 1`` before it (as long as the input)."""
    means, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        means.append(total / min(index + 1, window))
    return means


class LossCurve(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.total = 0
        self.setMinimumSize(260, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(420, 170)

    def reset(self, total: int, history: Iterable[tuple[int, float]] = ()) -> None:
        self.total = total
        self.steps, self.losses = [], []
        for step, loss in history:
            self.steps.append(step)
            self.losses.append(loss)
        self.update()

    def add(self, step: int, loss: float) -> None:
        if self.steps and step <= self.steps[-1]:  # a resumed run repeats nothing, but be safe
            return
        self.steps.append(step)
        self.losses.append(loss)
        self.update()

    def smoothed(self) -> list[float]:
        return running_mean(self.losses, max(1, len(self.losses) // 20))

    def paintEvent(self, _event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        plot = QRectF(self.rect()).adjusted(48, 10, -12, -22)
        painter.setPen(TEXT)
        if len(self.losses) < 2:
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "The loss curve starts after two steps")
            painter.end()
            return
        logs = [math.log10(max(loss, 1e-8)) for loss in self.losses]
        low, high = min(logs), max(logs)
        if high - low < 0.05:  # a flat start: give it some room instead of a zoomed-in zigzag
            low, high = low - 0.025, high + 0.025
        first, last = 0, max(self.total, self.steps[-1], 1)

        def point(step: int, value: float) -> QPointF:
            x = plot.left() + (step - first) / (last - first) * plot.width()
            y = plot.bottom() - (value - low) / (high - low) * plot.height()
            return QPointF(x, y)

        self._grid(painter, plot, low, high)
        painter.setPen(TEXT)
        painter.drawText(QRectF(plot.left(), plot.bottom() + 4, 80, 16), Qt.AlignmentFlag.AlignLeft, "0")
        painter.drawText(
            QRectF(plot.right() - 120, plot.bottom() + 4, 120, 16),
            Qt.AlignmentFlag.AlignRight,
            f"step {last}",
        )
        for values, pen in ((logs, QPen(RAW, 1)), (self._log_smoothed(), QPen(ACCENT, 2))):
            path = QPainterPath(point(self.steps[0], values[0]))
            for step, value in zip(self.steps[1:], values[1:], strict=True):
                path.lineTo(point(step, value))
            painter.setPen(pen)
            painter.drawPath(path)
        painter.end()

    def _log_smoothed(self) -> list[float]:
        return [math.log10(max(value, 1e-8)) for value in self.smoothed()]

    def _grid(self, painter: QPainter, plot: QRectF, low: float, high: float) -> None:
        """Lines at 1, 2 and 5 times each power of ten in view (a few in between on a narrow range)."""
        marks = [
            exponent + math.log10(mantissa)
            for exponent in range(math.floor(low), math.ceil(high) + 1)
            for mantissa in (1, 2, 5)
        ]
        marks = [mark for mark in marks if low <= mark <= high]
        if len(marks) < 2:
            marks = [low + (high - low) * fraction for fraction in (0.1, 0.5, 0.9)]
        for mark in marks:
            y = plot.bottom() - (mark - low) / (high - low) * plot.height()
            painter.setPen(QPen(GRID, 1))
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(TEXT)
            painter.drawText(
                QRectF(0, y - 8, plot.left() - 6, 16),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                f"{10**mark:.3g}",
            )
