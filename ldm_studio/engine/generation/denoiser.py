"""Denoiser adapters: how one model family's network is called, so the sampling loop never names it.

An adapter takes the latents as the sampler scaled them, the timestep and the batch's text, and
returns the network's raw prediction (epsilon or v, as the scheduler config says; the scheduler does
the conversion). A transformer family (SD3 / FLUX: flow matching, x0 = x_t - sigma * v, packed
latents, T5 text) is one more adapter here and one more line in ``denoiser_for``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

# re-exported: the adapters and the loop import it from here
from ldm_studio.engine.generation.network_text import NetworkText  # noqa: F401

if TYPE_CHECKING:  # conditioning -> loader -> denoiser: the type alone, no import at run time
    from ldm_studio.engine.generation.conditioning import Conditioning


class Denoiser(Protocol):
    wants_pooled_text: bool  # the conditioning stage must provide pooled text embeddings
    takes_masked_image: bool  # a 9-channel inpainting network: mask and masked image as extra input

    def text_for(self, conditioning: Conditioning, size: tuple[int, int]) -> NetworkText: ...

    def predict(
        self, x: torch.Tensor, t: Any, text: NetworkText, extra: torch.Tensor | None = None
    ) -> torch.Tensor: ...

    def blocks(self) -> list[torch.nn.Module]: ...


def sdxl_time_ids(size: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """SDXL's micro-conditioning: original size, crop top-left, target size (all (height, width)).

    We never crop and always ask for the size we render, so original and target are both ``size``.
    """
    height, width = size
    return torch.tensor([[height, width, 0, 0, height, width]], dtype=dtype)


@dataclass(frozen=True)
class UNetDenoiser:
    """A diffusers ``UNet2DConditionModel``: SD 1.x / 2.x, SDXL (added conditions), inpainting UNets."""

    unet: torch.nn.Module
    device: torch.device

    @property
    def wants_pooled_text(self) -> bool:
        return self.unet.config.addition_embed_type == "text_time"

    @property
    def takes_masked_image(self) -> bool:
        return int(self.unet.config.in_channels) == 9

    def text_for(self, conditioning: Conditioning, size: tuple[int, int]) -> NetworkText:
        if conditioning.added is None:
            return NetworkText(conditioning.embeds)
        pooled = conditioning.added["text_embeds"]
        time_ids = sdxl_time_ids(size, conditioning.embeds.dtype).to(self.device)
        added = {"text_embeds": pooled, "time_ids": time_ids.repeat(pooled.shape[0], 1)}
        return NetworkText(conditioning.embeds, added)

    def predict(
        self, x: torch.Tensor, t: Any, text: NetworkText, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        if extra is not None:  # inpainting UNets read [latents, mask, masked image] along channels
            x = torch.cat([x, extra.to(x.dtype)], dim=1)
        return self.unet(
            x,
            t,
            encoder_hidden_states=text.embeds,
            timestep_cond=text.timestep_cond,
            added_cond_kwargs=text.added,
            return_dict=False,
        )[0]

    @property
    def embeds_guidance(self) -> bool:
        """An LCM-distilled UNet: the guidance scale goes in as an embedding, never as a CFG batch."""
        return getattr(self.unet.config, "time_cond_proj_dim", None) is not None

    def guidance_condition(self, guidance: float, batch: int, dtype: torch.dtype) -> torch.Tensor | None:
        """The w-embedding diffusers' Stable Diffusion pipelines pass as ``timestep_cond``.

        As they do: w = guidance - 1, scaled by 1000, sin/cos with frequencies exp(-ln(1e4)·i/(d/2-1)).
        """
        if not self.embeds_guidance:
            return None
        from diffusers.models.embeddings import get_timestep_embedding

        w = torch.full((batch,), (guidance - 1.0) * 1000.0, dtype=torch.float32)
        dim = int(self.unet.config.time_cond_proj_dim)
        embedding = get_timestep_embedding(w, dim, flip_sin_to_cos=False, downscale_freq_shift=1)
        return embedding.to(self.device, dtype)

    def blocks(self) -> list[torch.nn.Module]:
        return top_level_blocks(self.unet)


def classifier_free(denoiser: Denoiser, guidance: float) -> bool:
    """Whether a step runs the network twice (CFG): only for guidance > 1, and never on a network
    that embeds the guidance scale itself (LCM-distilled UNets, as diffusers decides)."""
    return guidance > 1.0 and not getattr(denoiser, "embeds_guidance", False)


def top_level_blocks(network: torch.nn.Module) -> list[torch.nn.Module]:
    """A network's down / mid / up blocks: places to check for a cancel a fraction of a call apart."""
    blocks: list[torch.nn.Module] = []
    for name in ("down_blocks", "mid_block", "up_blocks"):
        part = getattr(network, name, None)
        if isinstance(part, torch.nn.ModuleList):
            blocks.extend(part)
        elif isinstance(part, torch.nn.Module):
            blocks.append(part)
    return blocks


def denoiser_for(pipe: Any, device: torch.device) -> Denoiser:
    """The adapter for a loaded pipeline's network (a transformer family adds its branch here)."""
    unet = getattr(pipe, "unet", None)
    if unet is not None:
        return UNetDenoiser(unet, device)
    from ldm_studio.engine.generation.flow_denoiser import flow_denoiser_for  # SD 3 / FLUX transformers

    if (flow := flow_denoiser_for(pipe, device)) is not None:
        return flow
    raise ValueError(f"{type(pipe).__name__} has no denoising network LDM Studio knows how to call")
