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


def tiny_flux_set(root: Path, parts: str = "bfl"):  # noqa: ANN201 - (Path, FluxPipeline, Path)
    """A tiny FLUX.1 dev diffusers folder (root/tiny-flux-dev), its pipeline, and BFL's transformer
    file with ComfyUI's parts beside it in root/``parts``."""
    from diffusers import FluxPipeline

    folder = build_conventional_flux(root / "tiny-flux-dev")
    pipe = FluxPipeline.from_pretrained(folder, local_files_only=True)
    return folder, pipe, write_bfl_set(pipe, root / parts)


def transformer_apart(root: Path) -> tuple[Path, Path, Path]:
    """(BFL's transformer alone in root/models, the folder with its parts, the diffusers folder)."""
    folder, _pipe, bfl = tiny_flux_set(root, "parts")
    model = root / "models" / bfl.name
    model.parent.mkdir()
    bfl.rename(model)
    return model, bfl.parent, folder


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


# SD 3.x: the tiny diffusers models written as Stability keeps them (``joint_blocks.*``, VAE as
# ``first_stage_model.*``, text encoders as ``text_encoders.clip_l/clip_g/t5xxl.transformer.*``), or
# as a transformer with clip_l / clip_g / t5xxl_fp16 / sd3_vae files beside it. The reverse of
# diffusers' convert_sd3_transformer_checkpoint_to_diffusers.
SD3_TOP = {
    "pos_embed.pos_embed": "pos_embed",
    "pos_embed.proj": "x_embedder.proj",
    "time_text_embed.timestep_embedder.linear_1": "t_embedder.mlp.0",
    "time_text_embed.timestep_embedder.linear_2": "t_embedder.mlp.2",
    "time_text_embed.text_embedder.linear_1": "y_embedder.mlp.0",
    "time_text_embed.text_embedder.linear_2": "y_embedder.mlp.2",
    "context_embedder": "context_embedder",
    "proj_out": "final_layer.linear",
}
SD3_BLOCK = {
    "attn.norm_q": "x_block.attn.ln_q",
    "attn.norm_k": "x_block.attn.ln_k",
    "attn.norm_added_q": "context_block.attn.ln_q",
    "attn.norm_added_k": "context_block.attn.ln_k",
    "attn.to_out.0": "x_block.attn.proj",
    "attn.to_add_out": "context_block.attn.proj",
    "attn2.norm_q": "x_block.attn2.ln_q",
    "attn2.norm_k": "x_block.attn2.ln_k",
    "attn2.to_out.0": "x_block.attn2.proj",
    "norm1.linear": "x_block.adaLN_modulation.1",
    "norm1_context.linear": "context_block.adaLN_modulation.1",
    "ff.net.0.proj": "x_block.mlp.fc1",
    "ff.net.2": "x_block.mlp.fc2",
    "ff_context.net.0.proj": "context_block.mlp.fc1",
    "ff_context.net.2": "context_block.mlp.fc2",
}
SD3_QKV = {
    "x_block.attn.qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "context_block.attn.qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "x_block.attn2.qkv": ("attn2.to_q", "attn2.to_k", "attn2.to_v"),
}


def _swap_halves(tensor: torch.Tensor) -> torch.Tensor:
    first, second = tensor.chunk(2)
    return torch.cat([second, first])


def stability_sd3_state(transformer) -> dict[str, torch.Tensor]:
    """Every tensor of the diffusers SD 3 transformer under Stability's name (none left over)."""
    state = dict(transformer.state_dict())
    last = transformer.config.num_layers - 1
    out: dict[str, torch.Tensor] = {}
    for key in list(state):
        stem, _, suffix = key.rpartition(".")
        if stem in SD3_TOP or key in SD3_TOP:
            name = SD3_TOP[key] if key in SD3_TOP else f"{SD3_TOP[stem]}.{suffix}"
            out[name] = state.pop(key)
        elif stem == "norm_out.linear":
            out[f"final_layer.adaLN_modulation.1.{suffix}"] = _swap_halves(state.pop(key))
    for i in range(transformer.config.num_layers):
        for qkv, names in SD3_QKV.items():
            for suffix in ("weight", "bias"):
                parts = [state.pop(f"transformer_blocks.{i}.{n}.{suffix}", None) for n in names]
                if parts[0] is not None:
                    out[f"joint_blocks.{i}.{qkv}.{suffix}"] = torch.cat(parts)
        for new, old in SD3_BLOCK.items():
            for suffix in ("weight", "bias"):
                value = state.pop(f"transformer_blocks.{i}.{new}.{suffix}", None)
                if value is not None:  # diffusers swaps the last block's context norm (context_pre_only)
                    swap = i == last and new == "norm1_context.linear"
                    out[f"joint_blocks.{i}.{old}.{suffix}"] = _swap_halves(value) if swap else value
    assert not state, f"tensors left without a Stability name: {sorted(state)[:3]}"
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def build_conventional_sd3(folder: Path, *, seed: int = 0, large: bool = False, dual: tuple = ()) -> Path:
    """A tiny SD 3 folder whose unreadable settings follow the single-file conventions: 64-wide
    transformer and CLIP heads, CLIP-L's projection the identity (SD 3's files carry none) and
    CLIP-G's GELU."""
    from transformers import CLIPTextModelWithProjection

    from tests.flow_models import build_tiny_sd3

    sizes = {"clip_hidden": 128, "head_width": 64, "t5_width": 256}
    build_tiny_sd3(folder, seed=seed, large=large, dual_attention_layers=dual, **sizes)
    clip_l = CLIPTextModelWithProjection.from_pretrained(folder / "text_encoder", local_files_only=True)
    with torch.no_grad():
        clip_l.text_projection.weight.copy_(torch.eye(clip_l.config.hidden_size))
    clip_l.save_pretrained(folder / "text_encoder")
    config_file = folder / "text_encoder_2" / "config.json"  # OpenCLIP bigG's activation, as shipped
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "hidden_act": "gelu"}))
    return folder


def sd3_clip_state(text_encoder, projection: bool) -> dict[str, torch.Tensor]:
    """transformers' names, as SD 3's clip_l / clip_g files; CLIP-L without its projection."""
    state = text_encoder.state_dict()
    return {
        k: v.clone().contiguous() for k, v in state.items() if projection or k != "text_projection.weight"
    }


def write_sd3_single_file(
    pipe, path: Path, *, t5: bool = True, vae_prefix: str = "first_stage_model."
) -> Path:
    """Stability's layout with every part inside (``t5=False``: without the T5 encoder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {f"model.diffusion_model.{k}": v for k, v in stability_sd3_state(pipe.transformer).items()}
    state.update({f"{vae_prefix}{k}": v for k, v in original_vae_state(pipe.vae).items()})
    encoders = {
        "clip_l": sd3_clip_state(pipe.text_encoder, False),
        "clip_g": sd3_clip_state(pipe.text_encoder_2, True),
    }
    if t5:
        encoders["t5xxl"] = t5_state(pipe.text_encoder_3)
    for name, part in encoders.items():
        state.update({f"text_encoders.{name}.transformer.{k}": v for k, v in part.items()})
    save_file(state, str(path))
    return path


def write_sd3_set(pipe, folder: Path, name: str = "sd3.5_large.safetensors", *, t5: bool = True) -> Path:
    """The transformer alone (bare Stability keys) with its parts beside it under ComfyUI's names."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(stability_sd3_state(pipe.transformer), str(folder / name))
    save_file(original_vae_state(pipe.vae), str(folder / "sd3_vae.safetensors"))
    save_file(sd3_clip_state(pipe.text_encoder, False), str(folder / "clip_l.safetensors"))
    save_file(sd3_clip_state(pipe.text_encoder_2, True), str(folder / "clip_g.safetensors"))
    if t5:
        save_file(t5_state(pipe.text_encoder_3), str(folder / "t5xxl_fp16.safetensors"))
    return folder / name
