"""Recognise a diffusers model folder from its ``model_index.json`` and component configs.

No weights are read: parameter counts and dtypes come from safetensors headers (or file sizes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ldm_studio.engine.catalog import CHECKPOINT_SUFFIXES, DIFFUSERS_MARKER, SAFETENSORS_SUFFIX
from ldm_studio.engine.checkpoints.info import ModelInfo
from ldm_studio.engine.checkpoints.layout import UNetLayout
from ldm_studio.engine.checkpoints.prediction import guess_prediction
from ldm_studio.engine.checkpoints.tensors import read_safetensors_header
from ldm_studio.engine.errors import ModelLoadError


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{file} cannot be read: {error}") from error
    if not isinstance(data, dict):
        raise ModelLoadError(f"{file} is not a JSON table")
    return data


def inspect_folder(folder: Path) -> ModelInfo:
    index_file = folder / DIFFUSERS_MARKER
    if not index_file.is_file():
        inside = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in CHECKPOINT_SUFFIXES)
        hint = f"; it holds {', '.join(inside[:3])}: open that file instead" if inside else ""
        raise ModelLoadError(
            f"{folder.name} is not a diffusers model folder: it has no model_index.json{hint}"
        )
    index = _read_json(index_file)
    if "transformer" in index:  # SD 3 / FLUX: a transformer instead of a UNet (engine.flow_models)
        from ldm_studio.engine.checkpoints.flow_folders import inspect_flow_folder

        return inspect_flow_folder(folder, _component_parameters, _folder_dtype)
    files = [p for p in folder.rglob("*") if p.is_file()]
    common: dict[str, Any] = {
        "path": folder,
        "file_type": "diffusers",
        "file_size": sum(p.stat().st_size for p in files),
    }
    problems = []
    components = {
        name: spec for name, spec in index.items() if not name.startswith("_") and isinstance(spec, list)
    }
    for name, spec in components.items():
        if spec and spec[0] is not None and not (folder / name).is_dir():
            problems.append(f"model_index.json lists {name} but the folder has no {name}/ folder")
    unet_config = (
        _read_json(folder / "unet" / "config.json") if (folder / "unet" / "config.json").is_file() else {}
    )
    vae_config = (
        _read_json(folder / "vae" / "config.json") if (folder / "vae" / "config.json").is_file() else {}
    )
    if not unet_config:
        problems.append("it has no unet/config.json")
    family = folder_family(folder, index, unet_config)
    scheduler_file = folder / "scheduler" / "scheduler_config.json"
    scheduler = _read_json(scheduler_file) if scheduler_file.is_file() else {}
    guess = guess_prediction(folder, family, None, scheduler)
    vae_factor = 2 ** (len(vae_config.get("block_out_channels", [0] * 4)) - 1)
    parameters = {
        name: _component_parameters(folder / name) for name in components if (folder / name).is_dir()
    }
    return ModelInfo(
        family=family,
        loadable=not problems,
        reason="; ".join(problems),
        prediction_type=guess.prediction_type,
        prediction_source=guess.source,
        zero_terminal_snr=guess.zero_terminal_snr,
        parameters={name: count for name, count in parameters.items() if count},
        weight_dtype=_folder_dtype(folder / "unet"),
        unet=_unet_from_config(unet_config) if unet_config else None,
        native_size=int(unet_config.get("sample_size", 64) or 64) * vae_factor,
        **common,
    )


def folder_family(folder: Path, index: dict[str, Any], unet_config: dict[str, Any] | None = None) -> str:
    """The family of a diffusers folder from its model_index.json, UNet and text encoder configs."""
    unet_config = unet_config or {}
    if "XL" in str(index.get("_class_name", "")):
        return "sdxl"
    encoder = index.get("text_encoder") or [None, None]
    if encoder[1] not in (None, "CLIPTextModel"):
        return "ldm-studio"
    context = unet_config.get("cross_attention_dim")
    if context in (768, 1024):
        return "sd1" if context == 768 else "sd2"
    text_file = folder / "text_encoder" / "config.json"
    activation = _read_json(text_file).get("hidden_act") if text_file.is_file() else None
    # OpenCLIP (SD 2.x) uses plain GELU, OpenAI CLIP (SD 1.x) quick-GELU.
    return "sd2" if activation == "gelu" else "sd1"


def _unet_from_config(config: dict[str, Any]) -> UNetLayout | None:
    try:
        channels = tuple(int(c) for c in config["block_out_channels"])
        down_types = list(config["down_block_types"])
        up_types = list(config["up_block_types"])
        depth = config.get("transformer_layers_per_block", 1)
        layers = config.get("layers_per_block", 2)
        # diffusers' attention_head_dim holds head counts (num_attention_heads wins when set)
        heads = config.get("num_attention_heads") or config.get("attention_head_dim", 8)
        return UNetLayout(
            in_channels=int(config.get("in_channels", 4)),
            out_channels=int(config.get("out_channels", 4)),
            block_out_channels=channels,
            layers_per_block=int(layers if isinstance(layers, int) else layers[0]),
            down_attention=tuple("CrossAttn" in t for t in down_types),
            up_attention=tuple("CrossAttn" in t for t in up_types),
            transformer_depth=tuple(depth) if isinstance(depth, list) else (int(depth),) * len(channels),
            has_mid_block=config.get("mid_block_type", "UNetMidBlock2DCrossAttn") is not None,
            context_dim=config.get("cross_attention_dim"),
            linear_projection=bool(config.get("use_linear_projection", False)),
            addition_embed_dim=config.get("projection_class_embeddings_input_dim"),
            attention_heads=tuple(heads) if isinstance(heads, list) else (int(heads),) * len(channels),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _weight_files(component: Path) -> list[Path]:
    return [p for p in component.iterdir() if p.suffix.lower() in CHECKPOINT_SUFFIXES and p.is_file()]


def _component_parameters(component: Path) -> int:
    """Parameters from safetensors headers (no weights read); other formats estimated from size."""
    total = 0
    for file in _weight_files(component):
        if file.suffix.lower() == SAFETENSORS_SUFFIX:
            try:
                total += read_safetensors_header(file).numel()
                continue
            except ModelLoadError:
                pass
        total += file.stat().st_size // (2 if "fp16" in file.name else 4)
    return total


def _folder_dtype(component: Path) -> str:
    if not component.is_dir():
        return ""
    for file in _weight_files(component):
        if file.suffix.lower() == SAFETENSORS_SUFFIX:
            try:
                return read_safetensors_header(file).main_dtype()
            except ModelLoadError:
                return ""
    return ""
