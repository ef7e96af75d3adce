"""Local config folders for diffusers' ``from_single_file``: the shipped family defaults, rewritten
with the dimensions read from the checkpoint so pruned, distilled and tiny models load too.

What shapes cannot tell follows each family's convention: SD 1.x UNets use 8 attention heads per
block, SD 2.x and SDXL 64-wide heads; CLIP text encoders 64-wide heads; group norms 32 groups.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.info import ModelInfo
from ldm_studio.engine.checkpoints.layout import (
    HEAD_WIDTH,
    TextEncoderLayout,
    UNetLayout,
    VaeLayout,
    unet_heads,
)
from ldm_studio.paths import resource

PIPELINE_CLASSES = {
    "sd1": "StableDiffusionPipeline",
    "sd2": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
}
TOKENIZER_FILES = ("vocab.json", "merges.txt")


def family_folder(family: str, prediction_type: str) -> Path:
    """The shipped config folder: SD 2.x v-models get the 768-v one (768 px, upcast attention)."""
    name = "sd2-v" if family == "sd2" and prediction_type == "v_prediction" else family
    folder = resource("configs", name)
    if not (folder / "model_index.json").is_file():
        raise FileNotFoundError(f"LDM Studio's config folder for {family} is missing ({folder})")
    return folder


def copy_family_folder(source: Path, destination: Path) -> Path:
    """A loadable copy of a shipped config folder: the shared CLIP vocabulary goes into each tokenizer."""
    shutil.copytree(source, destination)
    for tokenizer in destination.glob("tokenizer*"):
        add_clip_vocabulary(tokenizer)
    return destination


def add_clip_vocabulary(tokenizer_folder: Path) -> Path:
    """Put the shipped CLIP vocabulary beside a tokenizer_config.json, so the folder loads."""
    for name in TOKENIZER_FILES:
        shutil.copyfile(resource("tokenizers", "clip", name), tokenizer_folder / name)
    return tokenizer_folder


def write_config_folder(info: ModelInfo, destination: Path, *, prediction_type: str) -> Path:
    """Copy the family's config folder to ``destination`` and fit it to ``info``'s dimensions."""
    copy_family_folder(family_folder(info.family, prediction_type), destination)
    if info.unet is not None:
        _update(destination / "unet" / "config.json", lambda c: unet_config(c, info.unet, info.family, info))
    if info.vae is not None:
        _update(destination / "vae" / "config.json", lambda c: vae_config(c, info.vae))
    for index, encoder in enumerate(info.text_encoders):
        folder = "text_encoder" if index == 0 else f"text_encoder_{index + 1}"
        stored_layers = encoder.num_layers
        if info.family == "sd2":
            stored_layers -= 1  # SD 2.x conditions on the penultimate OpenCLIP layer: the last is never run
        _update(
            destination / folder / "config.json", lambda c, e=encoder, n=stored_layers: text_config(c, e, n)
        )
    _update(
        destination / "scheduler" / "scheduler_config.json",
        lambda c: {**c, "prediction_type": prediction_type, "rescale_betas_zero_snr": info.zero_terminal_snr},
    )
    return destination


def _update(file: Path, change: Any) -> None:
    config = json.loads(file.read_text(encoding="utf-8"))
    file.write_text(json.dumps(change(config), indent=2) + "\n", encoding="utf-8")


def unet_config(config: dict[str, Any], unet: UNetLayout, family: str, info: ModelInfo) -> dict[str, Any]:
    config = dict(config)
    depth = list(unet.transformer_depth)
    config.update(
        in_channels=unet.in_channels,
        out_channels=unet.out_channels,
        block_out_channels=list(unet.block_out_channels),
        layers_per_block=unet.layers_per_block,
        down_block_types=["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in unet.down_attention],
        up_block_types=["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in unet.up_attention],
        mid_block_type="UNetMidBlock2DCrossAttn" if unet.has_mid_block else None,
        transformer_layers_per_block=depth if len(set(unet.transformer_depth)) > 1 else depth[0],
        attention_head_dim=unet_heads(family, unet.block_out_channels),
        use_linear_projection=unet.linear_projection,
    )
    if unet.context_dim is not None:
        config["cross_attention_dim"] = unet.context_dim
    if unet.addition_embed_dim is not None and len(info.text_encoders) == 2:
        pooled = info.text_encoders[1].projection_dim or info.text_encoders[1].hidden_size
        # SDXL's extra input: the pooled text embedding plus six size/crop numbers, each embedded.
        config["projection_class_embeddings_input_dim"] = unet.addition_embed_dim
        config["addition_time_embed_dim"] = (unet.addition_embed_dim - pooled) // 6
    return config


def vae_config(config: dict[str, Any], vae: VaeLayout) -> dict[str, Any]:
    levels = len(vae.block_out_channels)
    return {
        **config,
        "in_channels": vae.in_channels,
        "out_channels": vae.out_channels,
        "block_out_channels": list(vae.block_out_channels),
        "down_block_types": ["DownEncoderBlock2D"] * levels,
        "up_block_types": ["UpDecoderBlock2D"] * levels,
        "layers_per_block": vae.layers_per_block,
        "latent_channels": vae.latent_channels,
        "use_quant_conv": vae.use_quant_conv,
        "use_post_quant_conv": vae.use_quant_conv,
        "mid_block_add_attention": vae.mid_attention,
    }


def text_config(config: dict[str, Any], encoder: TextEncoderLayout, layers: int) -> dict[str, Any]:
    heads = config["num_attention_heads"]
    if encoder.hidden_size != config["hidden_size"]:
        heads = max(1, encoder.hidden_size // HEAD_WIDTH)
    updated = {
        **config,
        "hidden_size": encoder.hidden_size,
        "intermediate_size": encoder.intermediate_size,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "vocab_size": encoder.vocab_size,
        "max_position_embeddings": encoder.max_positions,
    }
    if encoder.projection_dim is not None and "WithProjection" in str(config.get("architectures")):
        updated["projection_dim"] = encoder.projection_dim
    return updated
