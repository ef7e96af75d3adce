"""Inpainting masks as numpy arrays: painting strokes, inverting, feathering, saving. No Qt here.

A mask is an (height, width) uint8 array at the source image's size: 255 is repainted, 0 is kept,
which is what ``ldm_studio.engine.images.mask_tensor`` reads back from the saved PNG.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

PAINTED = 255
KEPT = 0


def empty_mask(width: int, height: int) -> np.ndarray:
    return np.zeros((height, width), dtype=np.uint8)


def brush_centre(x: float, y: float, size: int) -> tuple[float, float]:
    """Snap a brush to the pixel grid so a stamp covers whole pixels the same way everywhere.

    Odd sizes centre on a pixel's middle, even sizes on a pixel corner: a 1 px brush paints exactly
    the pixel under the pointer and a 2 px brush a 2 × 2 block, which matters on 32 px images.
    """
    if size % 2:
        return math.floor(x) + 0.5, math.floor(y) + 0.5
    return float(round(x)), float(round(y))


def paint_segment(
    mask: np.ndarray,
    start: tuple[float, float],
    end: tuple[float, float],
    size: int,
    value: int = PAINTED,
) -> tuple[int, int, int, int] | None:
    """Set every pixel whose centre lies within size / 2 of the segment start–end (a round brush
    dragged along it) to ``value``, in place. Points are image coordinates, already snapped with
    ``brush_centre``. Returns the touched box (left, top, right, bottom; exclusive) or None."""
    height, width = mask.shape
    radius = size / 2
    (x0, y0), (x1, y1) = start, end
    left = max(0, math.floor(min(x0, x1) - radius))
    top = max(0, math.floor(min(y0, y1) - radius))
    right = min(width, math.ceil(max(x0, x1) + radius) + 1)
    bottom = min(height, math.ceil(max(y0, y1) + radius) + 1)
    if left >= right or top >= bottom:
        return None
    # Distance from each pixel centre in the box to the segment (a capsule test, vectorised).
    px = np.arange(left, right, dtype=np.float32)[None, :] + 0.5
    py = np.arange(top, bottom, dtype=np.float32)[:, None] + 0.5
    dx, dy = x1 - x0, y1 - y0
    length_squared = dx * dx + dy * dy
    if length_squared > 0:
        along = np.clip(((px - x0) * dx + (py - y0) * dy) / length_squared, 0.0, 1.0)
    else:
        along = np.zeros((1, 1), dtype=np.float32)
    nearest_x = x0 + along * dx
    nearest_y = y0 + along * dy
    # A small tolerance keeps pixels that sit exactly on the rim (e.g. the 3 × 3 block of a 3 px brush).
    inside = (px - nearest_x) ** 2 + (py - nearest_y) ** 2 <= radius * radius + 1e-3
    mask[top:bottom, left:right][inside] = value
    return left, top, right, bottom


def inverted(mask: np.ndarray) -> np.ndarray:
    return PAINTED - mask


def coverage(mask: np.ndarray) -> float:
    """The share of the image that will be repainted (0..1), counting pixels at least half white."""
    if mask.size == 0:
        return 0.0
    return float(np.count_nonzero(mask >= 128)) / mask.size


def feathered(mask: np.ndarray, radius: float) -> np.ndarray:
    """The mask softened the way the engine softens it (Pillow's Gaussian blur, radius in pixels)."""
    if radius <= 0:
        return mask
    return np.asarray(Image.fromarray(mask).filter(ImageFilter.GaussianBlur(radius)))


def overlay_table(colour: tuple[int, int, int], opacity: float) -> np.ndarray:
    """Premultiplied RGBA for each of the 256 mask levels."""
    alpha = np.arange(256, dtype=np.float32) / 255.0 * opacity
    table = np.empty((256, 4), dtype=np.uint8)
    for channel, level in enumerate(colour):
        table[:, channel] = np.round(alpha * level)
    table[:, 3] = np.round(alpha * 255)
    return table


def overlay_rgba(mask: np.ndarray, colour: tuple[int, int, int], opacity: float) -> np.ndarray:
    """Premultiplied RGBA pixels (height, width, 4) tinting the masked area: a lookup per grey level,
    so a 1024 × 1024 overlay costs one indexing pass."""
    return overlay_table(colour, opacity)[mask]


def blur_reach(radius: float) -> int:
    """How far (pixels) one mask pixel can affect Pillow's Gaussian blur of that radius (measured:
    3 × radius + 1 reproduces the whole-image blur exactly)."""
    return math.ceil(3 * radius) + 1 if radius > 0 else 0


def refresh_overlay(
    pixels: np.ndarray,
    mask: np.ndarray,
    box: tuple[int, int, int, int],
    feather: float,
    table: np.ndarray,
) -> None:
    """Recompute, in place, the overlay pixels that a mask change inside ``box`` (left, top, right,
    bottom) can affect; the same result as rebuilding the overlay, at the cost of the brush area."""
    height, width = mask.shape
    reach = blur_reach(feather)

    def grown(by: int) -> tuple[int, int, int, int]:
        left, top, right, bottom = box
        return max(0, left - by), max(0, top - by), min(width, right + by), min(height, bottom + by)

    out_left, out_top, out_right, out_bottom = grown(reach)
    in_left, in_top, in_right, in_bottom = grown(2 * reach)
    soft = feathered(np.ascontiguousarray(mask[in_top:in_bottom, in_left:in_right]), feather)
    region = soft[out_top - in_top : out_bottom - in_top, out_left - in_left : out_right - in_left]
    pixels[out_top:out_bottom, out_left:out_right] = table[region]


def save_mask(mask: np.ndarray, folder: Path) -> Path:
    """Write the mask as a greyscale PNG named after its content, so saving the same mask twice
    reuses one file and different masks never overwrite each other."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(mask.tobytes() + f"{mask.shape}".encode()).hexdigest()[:16]
    path = folder / f"mask-{digest}.png"
    if not path.exists():
        partial = path.with_suffix(".part")
        Image.fromarray(np.ascontiguousarray(mask)).save(partial, format="PNG")
        partial.replace(path)  # never leave a half-written file under the final name
    return path


def read_mask(path: Path, size: tuple[int, int]) -> np.ndarray:
    """A saved mask as a (height, width) array, resized (nearest) to ``size`` = (width, height)."""
    with Image.open(path) as image:
        grey = image.convert("L")
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.NEAREST)
    return np.array(grey, dtype=np.uint8)
