"""The VAE both ways (latents as the denoiser sees them <-> pixels in [-1, 1]) and the final composite.

A tiled decode or a tiny autoencoder (TAESD) is another ``decode`` behind the same signature; passes
that work on the decoded pixels (hires fix, upscalers) follow ``decode`` in ``engine.generate``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from PIL import Image

from ldm_studio.engine.generation.denoiser import top_level_blocks
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.preview import to_uint8
from ldm_studio.engine.vae_tiling import TilingSink, decode_in_bounds, encode_in_bounds

if TYPE_CHECKING:
    from ldm_studio.engine.generation.start import SourceImage

log = logging.getLogger(__name__)


def _scaling(vae: torch.nn.Module) -> tuple[float, float]:
    scaling = float(vae.config.scaling_factor or 1.0)
    shift = float(getattr(vae.config, "shift_factor", 0.0) or 0.0)
    return scaling, shift


@torch.no_grad()
def decode(
    model: LoadedModel, latents: torch.Tensor, tiling: str = "auto", on_tiling: TilingSink | None = None
) -> torch.Tensor:
    """Latents (as the UNet sees them) -> images in [-1, 1]; retried in fp32 once if half precision fails.

    ``tiling``: Tiled VAE auto / always / never (engine.vae_tiling); ``on_tiling`` hears the choice."""
    vae = model.pipe.vae
    scaling, shift = _scaling(vae)
    raw = latents / scaling + shift
    vae_dtype = next(vae.parameters()).dtype
    images = decode_in_bounds(vae, raw.to(vae_dtype), tiling, on_tiling)
    autocast = torch.is_autocast_enabled(raw.device.type)
    if torch.isfinite(images).all() or (vae_dtype == torch.float32 and not autocast):
        return images
    log.warning("VAE decode gave non-finite pixels in %s; retrying in float32", images.dtype)
    vae.to(torch.float32)
    try:
        with torch.autocast(raw.device.type, enabled=False):
            return decode_in_bounds(vae, raw.float(), tiling, on_tiling)  # the record names the retry
    finally:
        vae.to(vae_dtype)


def decode_final(
    model: LoadedModel,
    latents: torch.Tensor,
    decoder: str = "",
    tiling: str = "auto",
    on_tiling: TilingSink | None = None,
) -> torch.Tensor:
    """Which decoder makes the saved image: the model's VAE (``decoder`` ""), or a tiny autoencoder
    file for a draft (GenerationRequest.decoder; engine.tiny_decoding)."""
    if decoder:
        from ldm_studio.engine.tiny_decoding import decode_tiny

        return decode_tiny(model, latents, decoder)
    return decode(model, latents, tiling, on_tiling)


@torch.no_grad()
def encode(model: LoadedModel, pixels: torch.Tensor, tiling: str = "auto") -> torch.Tensor:
    """Images in [-1, 1] -> latents as the UNet sees them (the distribution's mean: deterministic)."""
    vae = model.pipe.vae
    parameter = next(vae.parameters())
    raw = encode_in_bounds(vae, pixels.to(parameter.device, parameter.dtype), tiling).mean
    scaling, shift = _scaling(vae)
    return (raw - shift) * scaling


def decoder_blocks(model: LoadedModel) -> list[torch.nn.Module]:
    """The VAE decoder's top-level blocks: cancel points inside a decode that takes seconds."""
    return top_level_blocks(model.pipe.vae.decoder)


def composite(images: torch.Tensor, source: SourceImage | None) -> torch.Tensor:
    """Keep the source's own pixels outside the (feathered) mask: no VAE round-trip drift there."""
    if source is None or source.pixel_mask is None:
        return images
    mask = source.pixel_mask.to(images.device, images.dtype)
    return mask * images + (1 - mask) * source.pixels.to(images.device, images.dtype)


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    return [Image.fromarray(array) for array in to_uint8(images)]
