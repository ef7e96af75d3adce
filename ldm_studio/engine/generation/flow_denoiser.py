"""Denoiser adapters for the transformer families: SD 3.x (MMDiT) and FLUX.1.

Both predict the flow velocity v (x0 = x_t - sigma * v; ``engine.flow_models.FlowScheduler`` turns it
into the next sample and x0). The loop keeps latents in the VAE's (B, 16, h, w) layout for every
family, so previews, img2img, inpainting blends and the timeline need nothing new; FLUX's 2x2
patch packing happens here, on the way in and out of the network (a pure permutation: the
scheduler's element-wise step gives the same numbers in either layout).

Text arrives as ``Conditioning``: ``embeds`` (SD 3: CLIP-L + CLIP-G padded, then T5, along tokens;
FLUX: T5) and ``added["pooled_projections"]`` (SD 3: CLIP-L ⊕ CLIP-G pooled; FLUX: CLIP-L pooled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from ldm_studio.engine.generation.network_text import NetworkText

if TYPE_CHECKING:
    from ldm_studio.engine.generation.conditioning import Conditioning


def pack_latents(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h/2 · w/2, C · 4): FLUX's 2x2 patches as tokens (diffusers' order)."""
    batch, channels, height, width = latents.shape
    patches = latents.view(batch, channels, height // 2, 2, width // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return patches.reshape(batch, (height // 2) * (width // 2), channels * 4)


def unpack_latents(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The inverse of ``pack_latents`` for an (h, w) latent."""
    batch, _, features = tokens.shape
    channels = features // 4
    patches = tokens.view(batch, height // 2, width // 2, channels, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return patches.reshape(batch, channels, height, width)


def image_ids(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """FLUX's positions of the (h/2, w/2) image tokens: (0, row, column), as FluxPipeline makes them."""
    ids = torch.zeros(height // 2, width // 2, 3)
    ids[..., 1] = ids[..., 1] + torch.arange(height // 2)[:, None]
    ids[..., 2] = ids[..., 2] + torch.arange(width // 2)[None, :]
    return ids.reshape(-1, 3).to(device=device, dtype=dtype)


def transformer_blocks(network: torch.nn.Module) -> list[torch.nn.Module]:
    """Cancel points a fraction of a step apart: every (double and single stream) block."""
    blocks: list[torch.nn.Module] = []
    for name in ("transformer_blocks", "single_transformer_blocks"):
        part = getattr(network, name, None)
        if isinstance(part, torch.nn.ModuleList):
            blocks.extend(part)
    return blocks


@dataclass(frozen=True)
class SD3Denoiser:
    """``SD3Transformer2DModel``: classic CFG (two passes), pooled CLIP projections."""

    transformer: torch.nn.Module
    device: torch.device
    wants_pooled_text: bool = True
    takes_masked_image: bool = False
    embeds_guidance: bool = False

    def text_for(self, conditioning: Conditioning, size: tuple[int, int]) -> NetworkText:
        return NetworkText(conditioning.embeds, conditioning.added)

    def predict(
        self, x: torch.Tensor, t: Any, text: NetworkText, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        timestep = t.expand(x.shape[0])  # StableDiffusion3Pipeline passes t itself (0..1000)
        return self.transformer(
            hidden_states=x,
            timestep=timestep,
            encoder_hidden_states=text.embeds,
            pooled_projections=(text.added or {})["pooled_projections"],
            return_dict=False,
        )[0]

    def blocks(self) -> list[torch.nn.Module]:
        return transformer_blocks(self.transformer)


@dataclass(frozen=True)
class FluxDenoiser:
    """``FluxTransformer2DModel``: packed latents, img/txt ids, and for dev the guidance as an input.

    Never CFG (``embeds_guidance``): dev reads the guidance value in one pass, schnell none at all.
    """

    transformer: torch.nn.Module
    device: torch.device
    wants_pooled_text: bool = True
    takes_masked_image: bool = False
    embeds_guidance: bool = True

    @property
    def guidance_embedded(self) -> bool:
        return bool(self.transformer.config.guidance_embeds)

    def guidance_condition(self, guidance: float, batch: int, dtype: torch.dtype) -> torch.Tensor | None:
        """FLUX dev's distilled guidance per image (float32, as FluxPipeline); schnell takes none."""
        if not self.guidance_embedded:
            return None
        return torch.full((batch,), float(guidance), device=self.device, dtype=torch.float32)

    def text_for(self, conditioning: Conditioning, size: tuple[int, int]) -> NetworkText:
        return NetworkText(conditioning.embeds, conditioning.added)

    def predict(
        self, x: torch.Tensor, t: Any, text: NetworkText, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch, _, height, width = x.shape
        timestep = t.expand(batch).to(x.dtype) / 1000  # FluxPipeline: the sigma, not the timestep
        text_ids = torch.zeros(text.embeds.shape[1], 3, device=x.device, dtype=text.embeds.dtype)
        tokens = self.transformer(
            hidden_states=pack_latents(x),
            timestep=timestep,
            guidance=text.timestep_cond,
            pooled_projections=(text.added or {})["pooled_projections"],
            encoder_hidden_states=text.embeds,
            txt_ids=text_ids,
            img_ids=image_ids(height, width, x.device, x.dtype),
            return_dict=False,
        )[0]
        return unpack_latents(tokens, height, width)

    def blocks(self) -> list[torch.nn.Module]:
        return transformer_blocks(self.transformer)


def flow_denoiser_for(pipe: Any, device: torch.device) -> SD3Denoiser | FluxDenoiser | None:
    """The adapter for a transformer pipeline, or None when ``pipe`` has no transformer we know."""
    transformer = getattr(pipe, "transformer", None)
    if transformer is None:
        return None
    if "guidance_embeds" in transformer.config:
        return FluxDenoiser(transformer, device)
    if "pooled_projection_dim" in transformer.config:
        return SD3Denoiser(transformer, device)
    return None
