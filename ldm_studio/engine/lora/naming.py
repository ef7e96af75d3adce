"""Which layer of the loaded model a LoRA key names.

LoRA files name layers three ways:

- kohya / A1111 / LyCORIS: ``lora_unet_`` / ``lora_te_`` (SDXL: ``lora_te1_``, ``lora_te2_``) and the
  module path with ``.`` turned into ``_``. The UNet path is either diffusers' own
  (``down_blocks_0_attentions_0_…``, what kohya writes for SD 1.x/2.x) or the original LDM/sgm one
  (``input_blocks_1_1_…``, what kohya writes for SDXL and some other trainers use for SD 1.x);
- diffusers / PEFT: the dotted module path under ``unet.``, ``text_encoder.``, ``text_encoder_2.``.

Rather than rewriting names with string replacements (the underscores inside ``to_q`` or
``transformer_blocks`` make that guesswork), every name a layer can go by is generated from the
modules the loaded model really has, and a key is looked up in that table. A key absent from the
table names no layer of this model — which is then reported, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

UNET, TE1, TE2 = "unet", "te1", "te2"
TRANSFORMER = "transformer"  # SD 3 / FLUX: the denoiser is a transformer, not a UNet
DENOISERS = (UNET, TRANSFORMER)
PART_LABELS = {UNET: "UNet", TE1: "text encoder", TE2: "second text encoder", TRANSFORMER: "transformer"}
KOHYA_PREFIXES = {"lora_unet_": UNET, "lora_te_": TE1, "lora_te1_": TE1, "lora_te2_": TE2}

# What A1111 and ComfyUI call SD 1.x / 2.x / SDXL, by the width of the text encoder(s).
FAMILY_BY_TEXT_WIDTHS = {(768,): "sd1", (1024,): "sd2", (768, 1280): "sdxl"}

# Inside an LDM ResBlock the layers sit in Sequentials; diffusers names them.
_RESNET_LDM_NAMES = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_UNET_TOP_LEVEL_LDM_NAMES = {
    "conv_in": "input_blocks.0.0",
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}


@dataclass(frozen=True)
class ModelParts:
    """The networks a LoRA can change: the UNet and the text encoder(s), in the pipeline's order."""

    unet: nn.Module  # the denoiser: a UNet, or SD 3's / FLUX's transformer (then denoiser is TRANSFORMER)
    text_encoders: tuple[nn.Module, ...] = ()
    denoiser: str = UNET

    @classmethod
    def from_pipe(cls, pipe: Any) -> ModelParts:
        encoders = (getattr(pipe, "text_encoder", None), getattr(pipe, "text_encoder_2", None))
        encoders = tuple(encoder for encoder in encoders if encoder is not None)
        if getattr(pipe, "unet", None) is None and getattr(pipe, "transformer", None) is not None:
            return cls(pipe.transformer, encoders, TRANSFORMER)
        return cls(pipe.unet, encoders)

    def named(self) -> dict[str, nn.Module]:
        parts = {self.denoiser: self.unet}
        for name, encoder in zip((TE1, TE2), self.text_encoders, strict=False):
            parts[name] = encoder
        return parts

    @property
    def text_widths(self) -> tuple[int, ...]:
        return tuple(int(getattr(encoder.config, "hidden_size", 0)) for encoder in self.text_encoders)

    @property
    def family(self) -> str:
        """ "sd1", "sd2", "sdxl" by the text encoders' widths, or "" for anything else."""
        return FAMILY_BY_TEXT_WIDTHS.get(self.text_widths, "")


@dataclass(frozen=True)
class Target:
    """One patchable layer of the loaded model."""

    part: str
    path: str  # diffusers' module path inside its part
    module: nn.Module

    @property
    def weight(self) -> torch.Tensor:
        return self.module.weight


def patchable(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Conv2d, nn.Conv1d)) and module.weight is not None


def ldm_prefixes(unet: nn.Module) -> dict[str, str]:
    """diffusers module prefix -> the LDM/sgm prefix of the same module, from the UNet's structure."""
    table = dict(_UNET_TOP_LEVEL_LDM_NAMES)
    index = 1
    for b, block in enumerate(getattr(unet, "down_blocks", ())):
        attentions = getattr(block, "attentions", None)
        for layer in range(len(block.resnets)):
            table[f"down_blocks.{b}.resnets.{layer}"] = f"input_blocks.{index}.0"
            if attentions is not None and layer < len(attentions):
                table[f"down_blocks.{b}.attentions.{layer}"] = f"input_blocks.{index}.1"
            index += 1
        if getattr(block, "downsamplers", None):
            table[f"down_blocks.{b}.downsamplers.0.conv"] = f"input_blocks.{index}.0.op"
            index += 1
    mid = getattr(unet, "mid_block", None)
    if mid is not None:
        table["mid_block.resnets.0"] = "middle_block.0"
        if getattr(mid, "attentions", None):
            table["mid_block.attentions.0"] = "middle_block.1"
            table["mid_block.resnets.1"] = "middle_block.2"
        elif len(mid.resnets) > 1:
            table["mid_block.resnets.1"] = "middle_block.1"
    index = 0
    for b, block in enumerate(getattr(unet, "up_blocks", ())):
        attentions = getattr(block, "attentions", None)
        for layer in range(len(block.resnets)):
            table[f"up_blocks.{b}.resnets.{layer}"] = f"output_blocks.{index}.0"
            if attentions is not None and layer < len(attentions):
                table[f"up_blocks.{b}.attentions.{layer}"] = f"output_blocks.{index}.1"
            index += 1
        if getattr(block, "upsamplers", None):
            slot = 2 if attentions is not None else 1
            table[f"up_blocks.{b}.upsamplers.0.conv"] = f"output_blocks.{index - 1}.{slot}.conv"
    return table


def ldm_path(path: str, prefixes: dict[str, str]) -> str | None:
    """The LDM name of a diffusers UNet module path, or None where LDM has no such module."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in prefixes:
            rest = parts[cut:]
            if ".resnets." in f".{prefix}." and rest:
                inner = _RESNET_LDM_NAMES.get(rest[0])
                if inner is None:
                    return None
                rest = [inner, *rest[1:]]
            return ".".join([prefixes[prefix], *rest])
    return None


def _text_model_path(encoder: nn.Module, path: str) -> str:
    """CLIP paths as kohya spells them: transformers 5's flat CLIPTextModel has no ``text_model.``."""
    return path if hasattr(encoder, "text_model") else f"text_model.{path}"


@dataclass
class ModuleIndex:
    """Every name each patchable layer of the model goes by."""

    targets: dict[tuple[str, str], Target] = field(default_factory=dict)  # (part, path)
    aliases: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)  # (part, name) -> key

    @classmethod
    def build(cls, parts: ModelParts) -> ModuleIndex:
        index = cls()
        for part, network in parts.named().items():
            prefixes = ldm_prefixes(network) if part == UNET else {}
            for path, module in network.named_modules():
                if not patchable(module):
                    continue
                key = (part, path)
                index.targets[key] = Target(part, path, module)
                names = {path}
                if part == UNET:
                    ldm = ldm_path(path, prefixes)
                    if ldm:
                        names.add(ldm)
                elif part != TRANSFORMER:
                    names.add(_text_model_path(network, path))
                for name in names:
                    index.aliases[(part, name)] = key
                    for kohya, kohya_part in KOHYA_PREFIXES.items():
                        if kohya_part == part:
                            index.aliases[(part, kohya + name.replace(".", "_"))] = key
        return index

    def find(self, part: str, name: str) -> Target | None:
        key = self.aliases.get((part, name))
        return self.targets[key] if key is not None else None
