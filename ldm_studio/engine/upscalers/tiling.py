"""Running an upscaler over an image in overlapping tiles, so memory stays bounded by the tile size.

Tiles overlap by ``overlap`` input pixels and are blended with weights that are zero in the third of
the overlap nearest each tile's own edge, rise across the middle third, and are one beyond it. A
pixel therefore only takes values from tiles that saw at least ``overlap / 3`` pixels of context
around it: for a network whose receptive field fits in that margin the tiled result equals the
untiled one, and for deeper networks the remaining differences fade in instead of forming a seam.
The blend weights form a grid (a product of one weight per column and one per row), so their sum
is kept as two 1-D arrays rather than a full-size weight image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ldm_studio.engine.errors import CancelledError
from ldm_studio.engine.upscalers.loading import UpscalerModel
from ldm_studio.engine.upscalers.resize import LANCZOS, PixelResize

DEFAULT_TILE = 192  # input pixels; a 4× RRDBNet tile then peaks at roughly 0.6 GB of activations
DEFAULT_OVERLAP = 24
MIN_WEIGHT = 1e-4  # far below a visible difference (1/255 ≈ 4e-3)
MAX_PASSES = 3  # a 4× network asked for 16× runs twice; beyond that the result is only blur

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    overlap_before: int  # input pixels shared with the previous tile (0 for the first)
    overlap_after: int


def tile_spans(length: int, tile: int, overlap: int) -> list[Span]:
    """Tiles along one side, ``tile`` long, as few as keep every overlap at least ``overlap``,
    spread evenly (so no tile only shaves a sliver off its neighbour)."""
    if length <= tile:
        return [Span(0, length, 0, 0)]
    count = math.ceil((length - overlap) / (tile - overlap))
    starts = [round(i * (length - tile) / (count - 1)) for i in range(count)]
    ends = [start + tile for start in starts]
    return [
        Span(
            start,
            end,
            ends[i - 1] - start if i > 0 else 0,
            end - starts[i + 1] if i + 1 < count else 0,
        )
        for i, (start, end) in enumerate(zip(starts, ends, strict=True))
    ]


def _ramp(width: int) -> np.ndarray:
    """Weights across an overlap band of ``width`` pixels, from the tile's edge inwards."""
    position = (np.arange(width, dtype=np.float32) + 0.5) / max(width, 1)
    # never exactly zero: where three tiles overlap, some pixel could otherwise get no weight at all
    return np.clip(3.0 * position - 1.0, MIN_WEIGHT, 1.0)


def blend_weights(span: Span, scale: int) -> np.ndarray:
    weights = np.ones((span.end - span.start) * scale, dtype=np.float32)
    if span.overlap_before:
        band = span.overlap_before * scale
        weights[:band] = _ramp(band)
    if span.overlap_after:
        band = span.overlap_after * scale
        weights[-band:] = np.minimum(weights[-band:], _ramp(band)[::-1])
    return weights


def tile_count(width: int, height: int, tile: int, overlap: int) -> int:
    return len(tile_spans(width, tile, overlap)) * len(tile_spans(height, tile, overlap))


def run_tiled(
    model: UpscalerModel,
    pixels: np.ndarray,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    on_tile: Callable[[], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1] -> (H·s, W·s, 3), one tile at a time."""
    import torch
    from torch.nn import functional as F

    if tile < 8 or not 0 <= overlap < tile:
        raise ValueError(
            f"tile must be at least 8 pixels and overlap smaller than it (got {tile}, {overlap})"
        )
    height, width = pixels.shape[:2]
    scale = model.scale
    rows, columns = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
    column_weights = [blend_weights(span, scale) for span in columns]
    row_weights = [blend_weights(span, scale) for span in rows]
    output = np.zeros((height * scale, width * scale, 3), dtype=np.float32)
    source = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        for row, wy in zip(rows, row_weights, strict=True):
            for column, wx in zip(columns, column_weights, strict=True):
                if should_stop is not None and should_stop():
                    raise CancelledError("upscale cancelled")
                piece = source[:, :, row.start : row.end, column.start : column.end]
                pad_h, pad_w = (
                    (-piece.shape[2]) % model.size_multiple,
                    (-piece.shape[3]) % model.size_multiple,
                )
                if pad_h or pad_w:
                    piece = F.pad(piece, (0, pad_w, 0, pad_h), mode="replicate")
                result = model.network(piece.to(model.device))
                result = result[0, :, : (row.end - row.start) * scale, : (column.end - column.start) * scale]
                result = result.float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
                ys = slice(row.start * scale, row.end * scale)
                xs = slice(column.start * scale, column.end * scale)
                output[ys, xs] += result * (wy[:, None, None] * wx[None, :, None])
                if on_tile is not None:
                    on_tile()
    totals_y = _weight_totals(rows, row_weights, height * scale, scale)
    totals_x = _weight_totals(columns, column_weights, width * scale, scale)
    output /= totals_y[:, None, None] * totals_x[None, :, None]
    return output


def _weight_totals(spans: list[Span], weights: list[np.ndarray], length: int, scale: int) -> np.ndarray:
    total = np.zeros(length, dtype=np.float32)
    for span, weight in zip(spans, weights, strict=True):
        total[span.start * scale : span.end * scale] += weight
    return total


def upscale(
    image: Image.Image,
    upscaler: UpscalerModel | PixelResize,
    scale: float,
    *,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    on_progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Image.Image:
    """``image`` enlarged ``scale`` times (the size rounds to whole pixels).

    A network runs as many passes as reaching ``scale`` takes (a 4× model asked for 2× runs once and
    the result is brought down with Lanczos, as A1111 does); alpha is enlarged with Lanczos.
    ``on_progress(done, total)`` is called after every tile; ``should_stop`` is checked before each
    tile and raises the engine's CancelledError.
    """
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"the scale must be a positive number (got {scale})")
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if isinstance(upscaler, PixelResize):
        if should_stop is not None and should_stop():
            raise CancelledError("upscale cancelled")
        result = upscaler.resize(image, target)
        if on_progress is not None:
            on_progress(1, 1)
        return result
    alpha = image.getchannel("A") if image.mode in ("RGBA", "LA") else None
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    passes = _passes(scale, upscaler.scale)
    sizes = [(image.width * upscaler.scale**n, image.height * upscaler.scale**n) for n in range(passes)]
    total = sum(tile_count(w, h, tile, overlap) for w, h in sizes)
    done = 0

    def tile_done() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(done, total)

    for _ in range(passes):
        pixels = run_tiled(
            upscaler, pixels, tile=tile, overlap=overlap, on_tile=tile_done, should_stop=should_stop
        )
    result = Image.fromarray(np.round(pixels * 255.0).astype(np.uint8), "RGB")
    if result.size != target:
        result = LANCZOS.resize(result, target)
    if alpha is not None:
        result.putalpha(LANCZOS.resize(alpha, target))
    return result


def _passes(scale: float, network_scale: int) -> int:
    if network_scale <= 1 or scale <= 1:
        return 1
    return min(MAX_PASSES, max(1, math.ceil(math.log(scale) / math.log(network_scale) - 1e-9)))
