"""Seamless tiling (A1111's "Tiling"): circular padding in every 3x3 convolution of the UNet and VAE.

A1111 sets ``padding_mode = 'circular'`` on every ``torch.nn.Conv2d`` of the whole model (UNet,
VAE encoder and decoder) and back to ``'zeros'`` afterwards. diffusers' convolutions carry their
padding in the layer (``padding=1``), so the same switch works here: each conv then sees the far
edge where the near one ends, and the image repeats without a seam. (The VAE encoder's downsamplers
pad explicitly with zeros before a ``padding=0`` conv; A1111's LDM encoder does the same, and only
image-to-image passes through it.)

The switch is a context manager that remembers each layer's own mode and puts it back, even when the
generation fails or is cancelled: the next generation is an ordinary one. LoRAs are merged into the
weights (engine.lora), so their convolutions are the same layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

# What the record and the A1111 text say (A1111 writes "Tiling: True" only when it is on).
A1111_KEY = "Tiling"


def padded_convs(*networks: Any) -> list[torch.nn.Conv2d]:
    """Every Conv2d of ``networks`` that pads at all (1x1 convs have nothing to wrap)."""
    found: list[torch.nn.Conv2d] = []
    seen: set[int] = set()
    for network in networks:
        if not isinstance(network, torch.nn.Module):
            continue
        for module in network.modules():
            if isinstance(module, torch.nn.Conv2d) and id(module) not in seen and any(module.padding):
                seen.add(id(module))
                found.append(module)
    return found


@contextlib.contextmanager
def circular_padding(*networks: Any, enabled: bool = True) -> Iterator[list[torch.nn.Conv2d]]:
    """Circular padding in every padded Conv2d of ``networks`` for the duration; yields the layers."""
    if not enabled:
        yield []
        return
    convs = padded_convs(*networks)
    saved = [conv.padding_mode for conv in convs]
    for conv in convs:
        conv.padding_mode = "circular"
    try:
        yield convs
    finally:
        for conv, mode in zip(convs, saved, strict=True):
            conv.padding_mode = mode


def seamless(model: Any, enabled: bool) -> contextlib.AbstractContextManager:
    """A loaded model's denoiser and VAE made seamless while ``enabled`` (engine.generate's region)."""
    pipe = model.pipe
    networks = [getattr(pipe, name, None) for name in ("unet", "transformer", "vae")]
    return circular_padding(*networks, enabled=enabled)
