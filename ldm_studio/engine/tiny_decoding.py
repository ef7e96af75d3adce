"""Decoding with a tiny autoencoder (TAESD family) for a loaded model: live previews and draft decodes.

The loaded ``TinyAutoencoder`` is kept on the model (``LoadedModel.tiny_decoders``, by path), on the
model's device and in its VAE's dtype, so a preview every step costs one small decoder call and no
file read. Which file fits a model is checked once, by latent channels: a 4-channel TAESD on a
16-channel FLUX latent would fail deep inside a convolution, or worse, decode garbage.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.preview import tile, to_uint8
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.tiny_autoencoder import TinyAutoencoder, load_tiny_autoencoder

log = logging.getLogger(__name__)

DRAFT_RECORD_KEY = "draft_decoder"  # our JSON: {"name", "path", "layout"}; A1111 gets ``VAE: name``


def _scaling(model: LoadedModel) -> tuple[float, float]:
    config = model.pipe.vae.config
    return float(config.scaling_factor or 1.0), float(getattr(config, "shift_factor", 0.0) or 0.0)


def tiny_decoder_for(model: LoadedModel, path: str | Path) -> TinyAutoencoder:
    """The tiny autoencoder at ``path``, loaded once per model; ModelLoadError when it does not fit."""
    key = str(Path(path).expanduser())
    cached = model.tiny_decoders.get(key)
    if cached is not None:
        return cached
    if not Path(key).exists():
        raise ModelLoadError(f"The tiny decoder {key} does not exist")
    tiny = load_tiny_autoencoder(Path(key))
    if not tiny.info.has_decoder:
        raise ModelLoadError(f"{tiny.info.name} holds only a tiny encoder; pick its decoder file")
    channels = int(model.pipe.vae.config.latent_channels)
    if tiny.info.latent_channels != channels:
        raise ModelLoadError(
            f"{tiny.info.name} decodes {tiny.info.latent_channels}-channel latents, but {model.name} "
            f"makes {channels}-channel ones: pick a tiny decoder for its family ({model.family})"
        )
    vae_dtype = next(model.pipe.vae.parameters()).dtype
    tiny.to(model.placement.device, vae_dtype)
    model.tiny_decoders[key] = tiny
    return tiny


@torch.no_grad()
def decode_tiny(model: LoadedModel, latents: torch.Tensor, path: str | Path) -> torch.Tensor:
    """Latents as the UNet sees them -> images in [-1, 1], at the VAE's output size."""
    scaling, shift = _scaling(model)
    images = tiny_decoder_for(model, path).decode(latents, scaling, shift)
    return images.float()


def draft_record(request: GenerationRequest, model: LoadedModel | None = None) -> dict[str, Any]:
    """What a draft decode adds to the metadata; nothing for the model's own VAE (the default).

    ``VAE`` is A1111's key for the decoder a picture was made with (its file name without the
    extension), so an A1111 user reading the line sees that the tiny decoder made it.
    """
    if not request.decoder:
        return {}
    path = Path(request.decoder)
    record: dict[str, Any] = {"name": path.stem if path.is_file() else path.name, "path": str(path)}
    tiny = model.tiny_decoders.get(str(path.expanduser())) if model is not None else None
    if tiny is not None:
        record["layout"] = tiny.info.layout
    return {DRAFT_RECORD_KEY: record, "VAE": record["name"]}


def tiny_preview(model: LoadedModel, x0: torch.Tensor, path: str | Path) -> np.ndarray | None:
    """The x0 estimate through the tiny decoder, as one RGB image (a grid for batches).

    None when the file cannot be used (missing, another family's): the loop then shows the Fast
    projection instead, and the reason is logged once per file and model. A preview never stops a generation.
    """
    key = str(Path(path).expanduser())
    if key in model.tiny_decoders and model.tiny_decoders[key] is None:
        return None  # refused before, on this model: already logged
    try:
        return tile(to_uint8(decode_tiny(model, x0, key)))
    except ModelLoadError as error:
        model.tiny_decoders[key] = None
        log.warning("tiny decoder preview off, using the fast projection: %s", error)
        return None
