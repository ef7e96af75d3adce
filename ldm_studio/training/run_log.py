"""What a run leaves to look at: a CSV loss log, a loss plot PNG and image grids (Pillow only)."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

LOG_FIELDS = ("step", "loss", "learning_rate", "samples_per_s", "elapsed_s", "threads")


class LossLog:
    """Appends rows to ``loss.csv``; on resume, rows past the resumed step are dropped first."""

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        rows = read_loss_log(path) if path.is_file() else []
        kept = [row for row in rows if int(row["step"]) <= resume_step]
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, LOG_FIELDS)
            writer.writeheader()
            writer.writerows(kept)

    def append(self, **row: float) -> None:
        with self.path.open("a", newline="") as handle:
            csv.DictWriter(handle, LOG_FIELDS).writerow(row)


def read_loss_log(path: Path) -> list[dict[str, str]]:
    with Path(path).open(newline="") as handle:
        return list(csv.DictReader(handle))


def plot_loss(csv_path: Path, png_path: Path, title: str, size: tuple[int, int] = (640, 360)) -> None:
    """A log-scale loss curve (raw in grey, moving average in blue) drawn with Pillow."""
    rows = read_loss_log(csv_path)
    steps = np.array([float(row["step"]) for row in rows])
    losses = np.array([max(float(row["loss"]), 1e-8) for row in rows])
    width, height = size
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 60, width - 15, 30, height - 35
    draw.text((left, 8), title, fill="black")
    if len(rows) < 2:
        image.save(png_path)
        return
    log_losses = np.log10(losses)
    window = max(1, len(rows) // 30)
    smooth = np.convolve(log_losses, np.ones(window) / window, mode="valid")
    low, high = float(log_losses.min()), float(log_losses.max())
    high = high if high > low else low + 1.0

    def to_xy(step: float, value: float) -> tuple[float, float]:
        x = left + (step - steps[0]) / max(steps[-1] - steps[0], 1) * (right - left)
        y = bottom - (value - low) / (high - low) * (bottom - top)
        return x, y

    draw.rectangle((left, top, right, bottom), outline="black")
    for exponent in range(math.floor(low), math.ceil(high) + 1):
        for mantissa in (1, 2, 5):
            value = exponent + math.log10(mantissa)
            if low <= value <= high:
                _, y = to_xy(steps[0], value)
                draw.line((left, y, right, y), fill=(225, 225, 225))
                draw.text((5, y - 6), f"{10**value:.3g}", fill="black")
    draw.text((left, bottom + 8), f"step {int(steps[0])}", fill="black")
    draw.text((right - 80, bottom + 8), f"step {int(steps[-1])}", fill="black")
    draw.line([to_xy(s, v) for s, v in zip(steps, log_losses, strict=True)], fill=(190, 190, 190))
    offset = window - 1
    draw.line([to_xy(steps[i + offset], v) for i, v in enumerate(smooth)], fill=(30, 80, 200), width=2)
    image.save(png_path)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """N x 3 x H x W floats in [-1, 1] -> N x H x W x 3 uint8."""
    return ((np.clip(images, -1, 1) + 1) * 127.5).round().astype(np.uint8).transpose(0, 2, 3, 1)


def image_grid(images: Sequence[np.ndarray], columns: int, scale: int = 1, pad: int = 2) -> Image.Image:
    """uint8 H x W x 3 images in rows of ``columns``, each enlarged ``scale`` times (nearest)."""
    height, width = images[0].shape[:2]
    rows = math.ceil(len(images) / columns)
    cell_w, cell_h = width * scale + pad, height * scale + pad
    grid = Image.new("RGB", (columns * cell_w + pad, rows * cell_h + pad), (200, 200, 200))
    for index, array in enumerate(images):
        tile = Image.fromarray(array)
        if scale != 1:
            tile = tile.resize((width * scale, height * scale), Image.Resampling.NEAREST)
        grid.paste(tile, (pad + (index % columns) * cell_w, pad + (index // columns) * cell_h))
    return grid
