"""The text a denoiser adapter hands its network, in a module of its own so that adapters in other
modules (flow_denoiser) and denoiser_for, which picks among them, do not import each other."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NetworkText:
    """A batch's conditioning in the form the network takes it (SDXL: with its size conditions)."""

    embeds: torch.Tensor
    added: dict[str, torch.Tensor] | None = None
    # LCM-distilled UNets (``time_cond_proj_dim``) read the guidance scale as an embedding instead
    timestep_cond: torch.Tensor | None = None
