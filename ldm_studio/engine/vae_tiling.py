"""Tiled VAE decode and encode in bounded memory: when to tile, and doing it.

diffusers' ``AutoencoderKL`` already decodes tile by tile (``use_tiling``: overlapping tiles of
``tile_latent_min_size`` latents, blended over ``tile_overlap_factor``); what it lacks is the choice.
Here the choice is made per call from an estimate of the untiled pass's peak memory against the
device's free memory ("auto"), or forced ("always" / "never"), and an untiled pass that runs out of
memory anyway is retried tiled once. The choice made is returned, so the record can say it.

The estimates are pure functions of the shapes (tested with numbers; checked against measured
peaks by bench/tiled_vae.py).
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ldm_studio.engine.errors import GenerationError

log = logging.getLogger(__name__)

TILED_VAE_MODES = ("auto", "always", "never")
TILED_VAE_KEY = "tiled_vae"  # GenerationRequest.extras key (the app setting / CLI --tiled-vae)
RECORD_KEY = "vae_tiling"  # the record's entry (our JSON only: A1111 has no key for it)
# Tensors alive at once inside a decoder resnet: its input (kept for the residual), the norm's
# output and the activation's output (or the conv's output); see ``decoder_peak_bytes``.
LIVE_TENSORS = 3
# Use at most this share of the free memory: allocators fragment and other programs allocate too.
HEADROOM = 0.8
MB = 2**20


def tiled_vae_mode(request: Any) -> str:
    """The request's Tiled VAE mode (``extras["tiled_vae"]``); anything unknown counts as "auto"."""
    mode = str(getattr(request, "extras", {}).get(TILED_VAE_KEY, "auto")).lower()
    return mode if mode in TILED_VAE_MODES else "auto"


# ---- estimates (pure) --------------------------------------------------------------------------
def decoder_peak_bytes(
    latent_shape: Sequence[int], block_out_channels: Sequence[int], element_size: int = 4
) -> int:
    """Peak activation memory of one untiled ``AutoencoderKL`` decode of ``latent_shape`` (B, C, h, w).

    The decoder runs its blocks from the widest channels at the latent size to the narrowest at the
    image size, doubling the size between them; each level's resnets hold about ``LIVE_TENSORS``
    tensors of the wider of the level's input and output channels. The mid block's attention is
    counted as fused (PyTorch's scaled_dot_product_attention never materialises the scores). The
    weights are not counted: they are resident already, so free memory excludes them.
    """
    batch, _channels, height, width = latent_shape
    widths = list(reversed(block_out_channels))
    peak, previous = 0, widths[0]
    for level, channels in enumerate(widths):
        pixels = (height << level) * (width << level)
        peak = max(peak, LIVE_TENSORS * max(previous, channels) * pixels)
        previous = channels
    return int(peak * batch * element_size)


def encoder_peak_bytes(
    image_shape: Sequence[int], block_out_channels: Sequence[int], element_size: int = 4
) -> int:
    """Peak activation memory of one untiled encode of ``image_shape`` (B, 3, H, W): as the decoder
    in reverse, from the narrowest channels at the image size to the widest at the latent size."""
    batch, _channels, height, width = image_shape
    peak, previous = 0, block_out_channels[0]
    for level, channels in enumerate(block_out_channels):
        pixels = (height >> level) * (width >> level)
        peak = max(peak, LIVE_TENSORS * max(previous, channels) * pixels)
        previous = channels
    return int(peak * batch * element_size)


def tiled_decoder_peak_bytes(
    latent_shape: Sequence[int],
    block_out_channels: Sequence[int],
    tile_latent: int,
    overlap: float = 0.25,
    element_size: int = 4,
) -> int:
    """A tiled decode: one tile's untiled peak plus every decoded tile kept for blending (diffusers
    keeps them all) and the assembled image."""
    batch, channels, height, width = latent_shape
    one_tile = decoder_peak_bytes(
        (batch, channels, min(height, tile_latent), min(width, tile_latent)), block_out_channels, element_size
    )
    factor = 2 ** (len(block_out_channels) - 1)
    stride = max(1, int(tile_latent * (1 - overlap)))
    tiles = -(-height // stride) * -(-width // stride)
    kept = tiles * 3 * (tile_latent * factor) ** 2 + 3 * height * width * factor**2
    return int(one_tile + kept * batch * element_size)


# ---- free memory ------------------------------------------------------------------------------
def available_ram() -> int | None:
    """Bytes of RAM this process can still take: the system's available memory, and a container's
    cgroup limit where one is lower; None where neither can be read."""
    found: list[int] = []
    try:
        import psutil

        found.append(int(psutil.virtual_memory().available))
    except ImportError:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append(max(0, int(limit) - used))
    return min(found) if found else None


def free_memory_bytes(device: torch.device) -> int | None:
    """Bytes free for activations on ``device``; None where the device cannot say."""
    try:
        if device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(device)
            # memory PyTorch's caching allocator holds but does not use is free for us too
            cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
            return int(free + max(0, cached))
        if device.type == "mps":
            return max(0, int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()))
    except (RuntimeError, AttributeError) as error:
        log.warning("could not read the free memory of %s: %s", device, error)
        return None
    return available_ram()


# ---- the choice (pure) ------------------------------------------------------------------------
@dataclass(frozen=True)
class TilingChoice:
    tiled: bool
    mode: str
    reason: str  # what decided it, in words
    estimate: int = 0  # bytes the untiled pass would need
    free: int | None = None  # bytes free on the device when asked

    def record(self) -> dict[str, Any]:
        """For the image's record (our JSON)."""
        entry: dict[str, Any] = {"tiled": self.tiled, "mode": self.mode, "reason": self.reason}
        if self.estimate:
            entry["estimate_mb"] = round(self.estimate / MB)
        if self.free is not None:
            entry["free_mb"] = round(self.free / MB)
        return entry


TilingSink = Callable[[TilingChoice], None]


def tiling_record(choices: Sequence[TilingChoice]) -> dict[str, Any]:
    """The record's entry for the final decode (the last choice heard), or nothing."""
    return {RECORD_KEY: choices[-1].record()} if choices else {}


def choose_tiling(
    mode: str, estimate: int, free: int | None, *, larger_than_tile: bool = True, model_asks: bool = False
) -> TilingChoice:
    """Tile or not: "always" / "never" as asked; "auto" tiles when the untiled pass would not fit in
    ``HEADROOM`` of the free memory (or the model's own settings ask for tiling). An image no larger
    than one tile is never tiled: there would be one tile anyway."""
    if mode not in TILED_VAE_MODES:
        raise ValueError(f"unknown Tiled VAE mode {mode!r}; choose one of {', '.join(TILED_VAE_MODES)}")
    if not larger_than_tile:
        return TilingChoice(False, mode, "fits in one tile", estimate, free)
    if mode == "always":
        return TilingChoice(True, mode, "asked for", estimate, free)
    if mode == "never":
        return TilingChoice(False, mode, "asked for", estimate, free)
    if model_asks:
        return TilingChoice(True, mode, "the model's settings ask for it", estimate, free)
    if free is None:
        return TilingChoice(False, mode, "free memory unknown", estimate, free)
    if free is not None and estimate > HEADROOM * free:
        return TilingChoice(True, mode, "would not fit in free memory", estimate, free)
    return TilingChoice(False, mode, "fits in free memory", estimate, free)


# ---- doing it ---------------------------------------------------------------------------------
def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@contextlib.contextmanager
def vae_tiling_set(vae: Any, tiled: bool) -> Iterator[None]:
    """``vae.use_tiling`` as asked for the duration, then as it was (a model setting may keep it on)."""
    saved = bool(getattr(vae, "use_tiling", False))
    vae.use_tiling = tiled
    try:
        yield
    finally:
        vae.use_tiling = saved


def _element_size(vae: Any) -> int:
    return next(vae.parameters()).element_size()


def plan_decode(vae: Any, latents: torch.Tensor, mode: str) -> TilingChoice:
    channels = vae.config.block_out_channels
    estimate = decoder_peak_bytes(latents.shape, channels, _element_size(vae))
    tile = int(getattr(vae, "tile_latent_min_size", 0) or 0)
    larger = hasattr(vae, "use_tiling") and tile > 0 and max(latents.shape[-2:]) > tile
    free = free_memory_bytes(latents.device) if mode == "auto" and larger else None
    return choose_tiling(mode, estimate, free, larger_than_tile=larger, model_asks=bool(vae.use_tiling))


def plan_encode(vae: Any, pixels: torch.Tensor, mode: str) -> TilingChoice:
    channels = vae.config.block_out_channels
    estimate = encoder_peak_bytes(pixels.shape, channels, _element_size(vae))
    tile = vae.tile_sample_min_size if hasattr(vae, "use_tiling") else 0
    tile = int(tile[0] if isinstance(tile, (list, tuple)) else tile or 0)
    larger = tile > 0 and max(pixels.shape[-2:]) > tile
    free = free_memory_bytes(pixels.device) if mode == "auto" and larger else None
    return choose_tiling(mode, estimate, free, larger_than_tile=larger, model_asks=bool(vae.use_tiling))


def _circular_convs(vae: Any) -> list[torch.nn.Conv2d]:
    return [m for m in vae.modules() if isinstance(m, torch.nn.Conv2d) and m.padding_mode == "circular"]


def _tiled_decode(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """diffusers' tiled decode; for a seamless (circular-padded) VAE, the latent wrapped around by a
    margin instead, decoded with ordinary padding and cropped back: circular padding inside one tile
    would wrap that tile onto itself, not the image."""
    circular = _circular_convs(vae)
    if not circular:
        with vae_tiling_set(vae, True):
            return vae.decode(latents, return_dict=False)[0]
    height, width = latents.shape[-2:]
    margin = min(max(1, int(vae.tile_latent_min_size * vae.tile_overlap_factor)), height, width)
    wrapped = F.pad(latents, (margin, margin, margin, margin), mode="circular")
    for conv in circular:
        conv.padding_mode = "zeros"
    try:
        with vae_tiling_set(vae, True):
            images = vae.decode(wrapped, return_dict=False)[0]
    finally:
        for conv in circular:
            conv.padding_mode = "circular"
    factor = images.shape[-1] // wrapped.shape[-1]
    cut = margin * factor
    return images[..., cut : cut + height * factor, cut : cut + width * factor]


def decode_in_bounds(
    vae: Any,
    latents: torch.Tensor,
    mode: str = "auto",
    on_choice: TilingSink | None = None,
) -> torch.Tensor:
    """``vae.decode`` (raw latents, as the VAE takes them) tiled when it must be, or was asked to be;
    an untiled pass that runs out of memory is retried tiled once. ``on_choice`` hears what was done."""
    choice = plan_decode(vae, latents, mode)
    try:
        if choice.tiled:
            images = _tiled_decode(vae, latents)
        else:
            with vae_tiling_set(vae, False):
                images = vae.decode(latents, return_dict=False)[0]
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        images, choice = _retry_tiled(vae, latents, choice, error)
    if on_choice is not None:
        on_choice(choice)
    return images


def _retry_tiled(
    vae: Any, latents: torch.Tensor, choice: TilingChoice, error: BaseException
) -> tuple[torch.Tensor, TilingChoice]:
    size = f"{latents.shape[-1] * vae_factor(vae)}x{latents.shape[-2] * vae_factor(vae)}"
    if choice.tiled:
        raise GenerationError(
            f"The VAE ran out of memory decoding the {size} image even tile by tile; "
            "try a smaller size or batch, or half precision."
        ) from error
    if choice.mode == "never" or not hasattr(vae, "use_tiling"):
        raise GenerationError(
            f"The VAE ran out of memory decoding the {size} image; set Tiled VAE to Auto or Always."
        ) from error
    log.warning("VAE decode ran out of memory untiled at %s; retrying tile by tile", size)
    _release()
    try:
        images = _tiled_decode(vae, latents)
    except Exception as again:
        if is_out_of_memory(again):
            raise GenerationError(
                f"The VAE ran out of memory decoding the {size} image, also tile by tile; "
                "try a smaller size or batch, or half precision."
            ) from again
        raise
    return images, TilingChoice(True, choice.mode, "ran out of memory untiled", choice.estimate, choice.free)


def encode_in_bounds(vae: Any, pixels: torch.Tensor, mode: str = "auto") -> Any:
    """``vae.encode(pixels).latent_dist``, tiled when the image would not fit (img2img at large
    sizes), with the same one retry as decoding."""
    choice = plan_encode(vae, pixels, mode)
    try:
        with vae_tiling_set(vae, choice.tiled):
            return vae.encode(pixels).latent_dist
    except Exception as error:
        if not is_out_of_memory(error) or choice.tiled or choice.mode == "never":
            raise
    log.warning("VAE encode ran out of memory untiled; retrying tile by tile")
    _release()
    with vae_tiling_set(vae, True):
        return vae.encode(pixels).latent_dist


def vae_factor(vae: Any) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


def _release() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
