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

if TYPE_CHECKING:
    from ldm_studio.engine.generation.start import SourceImage

log = logging.getLogger(__name__)


def _scaling(vae: torch.nn.Module) -> tuple[float, float]:
    scaling = float(vae.config.scaling_factor or 1.0)
    shift = float(getattr(vae.config, "shift_factor", 0.0) or 0.0)
    return scaling, shift


@torch.no_grad()
def decode(model: LoadedModel, latents: torch.Tensor) -> torch.Tensor:
    """Latents (as the UNet sees them) -> images in [-1, 1]; retried in fp32 once if half precision fails."""
    vae = model.pipe.vae
    scaling, shift = _scaling(vae)
    raw = latents / scaling + shift
    vae_dtype = next(vae.parameters()).dtype
    images = vae.decode(raw.to(vae_dtype), return_dict=False)[0]
    autocast = torch.is_autocast_enabled(raw.device.type)
    if torch.isfinite(images).all() or (vae_dtype == torch.float32 and not autocast):
        return images
    log.warning("VAE decode gave non-finite pixels in %s; retrying in float32", images.dtype)
    vae.to(torch.float32)
    try:
        with torch.autocast(raw.device.type, enabled=False):
            return vae.decode(raw.float(), return_dict=False)[0]
    finally:
        vae.to(vae_dtype)


@torch.no_grad()
def encode(model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> latents as the UNet sees them (the distribution's mean: deterministic)."""
    vae = model.pipe.vae
    parameter = next(vae.parameters())
    raw = vae.encode(pixels.to(parameter.device, parameter.dtype)).latent_dist.mean
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
