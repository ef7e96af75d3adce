"""The tiny FLUX.1 diffusers models of tests/flow_models.py written out as people keep them: BFL's
transformer file with ``ae`` / ``clip_l`` / ``t5xxl_fp16`` beside it (ComfyUI's names), and ComfyUI's
all-in-one file. The reverse of diffusers' conversion (engine.checkpoints.flux_keys follows it)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from ldm_studio.engine.checkpoints.flux_keys import (
    DOUBLE_RENAMES,
    NORM_OUT,
    QKV,
    QKV_CONTEXT,
    SINGLE_RENAMES,
    TOP_RENAMES,
)
from tests.engine.checkpoint_factory import vae_key
from tests.flow_models import build_tiny_flux

FLUX_VAE_FACTORS = {"scaling_factor": 0.3611, "shift_factor": 0.1159}  # FLUX.1's, as the shipped config


def build_conventional_flux(folder: Path, *, seed: int = 0, dev: bool = True) -> Path:
    """A tiny FLUX folder whose unreadable settings follow the conventions single files load with:
    64-wide CLIP heads (width 128, 2 heads), 32-wide transformer heads with rotary axes (4, 14, 14),
    and FLUX.1's VAE scaling and shift."""
    build_tiny_flux(folder, seed=seed, dev=dev, clip_hidden=128, head_width=32, rope_axes=(4, 14, 14))
    config_file = folder / "vae" / "config.json"
    config = json.loads(config_file.read_text())
    config.update(FLUX_VAE_FACTORS)
    config_file.write_text(json.dumps(config))
    return folder


def _rename(state: dict, new: str, old: str, out: dict) -> None:
    for suffix in (".weight", ".bias"):
        if new + suffix in state:
            is_norm = "norm_q" in new or "norm_k" in new or "norm_added" in new
            out[old + (".scale" if is_norm else suffix)] = state[new + suffix]


def bfl_transformer_state(transformer) -> dict[str, torch.Tensor]:
    state = transformer.state_dict()
    out: dict[str, torch.Tensor] = {}
    for new, old in TOP_RENAMES:
        _rename(state, new, old, out)
    for i in range(transformer.config.num_layers):
        block, new_block = f"double_blocks.{i}.", f"transformer_blocks.{i}."
        for new, old in DOUBLE_RENAMES:
            _rename(state, new_block + new, block + old, out)
        for table in (QKV, QKV_CONTEXT):
            for old, names in table.items():
                for suffix in (".weight", ".bias"):
                    out[block + old + suffix] = torch.cat([state[new_block + n + suffix] for n in names])
    for i in range(transformer.config.num_single_layers):
        block, new_block = f"single_blocks.{i}.", f"single_transformer_blocks.{i}."
        for new, old in SINGLE_RENAMES:
            _rename(state, new_block + new, block + old, out)
        names = ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")
        for suffix in (".weight", ".bias"):
            out[block + "linear1" + suffix] = torch.cat([state[new_block + n + suffix] for n in names])
    for suffix in (".weight", ".bias"):
        scale, shift = state[NORM_OUT[0] + suffix].chunk(2)
        out[NORM_OUT[1] + suffix] = torch.cat([shift, scale])
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def original_vae_state(vae) -> dict[str, torch.Tensor]:
    levels = len(vae.config.block_out_channels)
    out = {}
    for key, value in vae.state_dict().items():
        if ".mid_block.attentions." in key and value.ndim == 2:
            value = value[:, :, None, None]  # BFL's attention uses 1x1 convolutions
        out[vae_key(key, levels)] = value.detach().clone().contiguous()
    return out


def clip_state(text_encoder) -> dict[str, torch.Tensor]:
    """transformers 4's names (``text_model.`` first), as ComfyUI's clip_l.safetensors has them."""
    return {
        f"text_model.{k.removeprefix('text_model.')}": v.clone() for k, v in text_encoder.state_dict().items()
    }


def t5_state(text_encoder) -> dict[str, torch.Tensor]:
    """Without the tied ``encoder.embed_tokens`` copy, as ComfyUI's t5xxl files."""
    state = text_encoder.state_dict()
    return {k: v.clone().contiguous() for k, v in state.items() if k != "encoder.embed_tokens.weight"}


def write_bfl_set(pipe, folder: Path, name: str = "flux1-dev.safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(bfl_transformer_state(pipe.transformer), str(folder / name))
    save_file(original_vae_state(pipe.vae), str(folder / "ae.safetensors"))
    save_file(clip_state(pipe.text_encoder), str(folder / "clip_l.safetensors"))
    save_file(t5_state(pipe.text_encoder_2), str(folder / "t5xxl_fp16.safetensors"))
    return folder / name


def write_all_in_one(pipe, path: Path, vae_prefix: str = "vae.") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"model.diffusion_model.{k}": v for k, v in bfl_transformer_state(pipe.transformer).items()}
    state.update({f"{vae_prefix}{k}": v for k, v in original_vae_state(pipe.vae).items()})
    state.update(
        {f"text_encoders.clip_l.transformer.{k}": v for k, v in clip_state(pipe.text_encoder).items()}
    )
    state.update(
        {f"text_encoders.t5xxl.transformer.{k}": v for k, v in t5_state(pipe.text_encoder_2).items()}
    )
    save_file(state, str(path))
    return path
