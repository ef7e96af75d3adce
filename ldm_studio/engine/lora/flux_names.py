"""FLUX.1 LoRA files in the layouts people have, turned into diffusers/PEFT names our reader knows.

- diffusers / PEFT (``transformer.…lora_A.weight``, ``text_encoder.…``): already in diffusers' names;
- kohya / sd-scripts (``lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight``, ``lora_te1_…``);
- BFL / ComfyUI (``diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight``, or without the prefix).

The last two name BFL's fused layers (``qkv``, single blocks' ``linear1`` = qkv + MLP); diffusers'
own converter (``_convert_kohya_flux_lora_to_diffusers``, what ``FluxLoraLoaderMixin`` uses) splits
them onto diffusers' separate projections and folds ``alpha / rank`` into the factors, so the result
is applied as a plain alpha-free LoRA. BFL files are first spelled the kohya way and go the same road.
"""

from __future__ import annotations

import re

import torch

from ldm_studio.engine.lora.errors import LoraError

# Module roots of BFL's FLUX transformer (the original, not diffusers').
_BFL_ROOTS = (
    "double_blocks.",
    "single_blocks.",
    "img_in.",
    "txt_in.",
    "time_in.",
    "vector_in.",
    "guidance_in.",
)
_BFL_FACTORS = re.compile(
    r"^(?P<path>.+)\.(?P<which>lora_A\.weight|lora_B\.weight|lora_down\.weight|lora_up\.weight|alpha)$"
)
_KOHYA_NAMES = {"lora_A.weight": "lora_down.weight", "lora_B.weight": "lora_up.weight"}


def _bfl_path(key: str) -> str | None:
    rest = key.removeprefix("diffusion_model.")
    return rest if rest.startswith(_BFL_ROOTS) else None


def is_kohya_flux(tensors: dict[str, torch.Tensor]) -> bool:
    if any(key.startswith(("lora_unet_double_blocks_", "lora_unet_single_blocks_")) for key in tensors):
        return True
    # kohya spelling of diffusers' names ("mixture"): FLUX alone has single transformer blocks
    return any(key.startswith("lora_transformer_single_transformer_blocks_") for key in tensors)


def is_bfl_flux(tensors: dict[str, torch.Tensor]) -> bool:
    return any(_bfl_path(key) is not None for key in tensors)


def is_flux_layout(tensors: dict[str, torch.Tensor]) -> bool:
    """A FLUX LoRA in kohya or BFL names (diffusers' own names need no conversion)."""
    return is_kohya_flux(tensors) or is_bfl_flux(tensors)


def _bfl_to_kohya(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        path = _bfl_path(key)
        match = _BFL_FACTORS.match(path) if path is not None else None
        if match is None:
            out[key] = tensor  # text-encoder keys and the like: the converter judges them
            continue
        suffix = _KOHYA_NAMES.get(match["which"], match["which"])
        out[f"lora_unet_{match['path'].replace('.', '_')}.{suffix}"] = tensor
    return out


def flux_to_diffusers(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """diffusers/PEFT-named tensors (alpha folded in) of a kohya or BFL FLUX LoRA."""
    from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers

    kohya = _bfl_to_kohya(tensors) if is_bfl_flux(tensors) else dict(tensors)
    kohya = {key: value.float() if value.is_floating_point() else value for key, value in kohya.items()}
    try:
        # the converter pops what it uses and raises on leftovers: give it a copy
        converted = _convert_kohya_flux_lora_to_diffusers(dict(kohya))
    except (AssertionError, KeyError, ValueError, RuntimeError, IndexError) as error:
        raise LoraError(f"{name} looks like a FLUX LoRA but its layers could not be read: {error}") from error
    return dict(converted)
