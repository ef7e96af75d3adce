"""Trainable low-rank adapters on a frozen UNet / text encoder, and their kohya-format export.

Each adapted layer keeps its weights; a forward hook adds ``up(down(x)) * multiplier * alpha / rank``
to its output, so module paths (and therefore the exported key names) stay exactly the diffusers
ones, gradient checkpointing recomputes the adapters with the layer, and multiplier 0 is the base
model bit for bit. ``up`` starts at zero: step 0 is the base model too.

Which layers (kohya sd-scripts' ``networks.lora`` defaults, so files look like everyone's):
- UNet, ``targets="transformer"`` (default): every Linear and 1x1 Conv2d inside a
  ``Transformer2DModel`` — proj_in/proj_out, attn1/attn2 to_q/to_k/to_v/to_out.0, ff.net.0.proj,
  ff.net.2. ``targets="attention"``: only the attention projections (kohya's attention-only
  preset; diffusers' train_text_to_image_lora default). ``targets="cross-attention"``: only
  attn2's projections, the layers that read the caption. ``targets="locon"``: the attention
  projections plus every ResNet's 3x3 ``conv1``/``conv2`` (kohya's LoCon, ``conv_dim``): the only
  adapters that reach the full-resolution blocks, where drawing style (outlines, flat fills) lives
  in a UNet whose attention runs at a coarse level only.
- CLIP text encoders: q/k/v/out_proj of each self-attention and mlp.fc1/fc2.
Names: ``lora_unet_<module path with . -> _>`` and ``lora_te_`` (``lora_te1_``/``lora_te2_`` for
SDXL's two encoders) + the CLIP path as transformers 4 named it (``text_model.encoder.…``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

UNET_TARGETS = ("transformer", "attention", "cross-attention", "locon")
RESNET_CONVOLUTIONS = ("conv1", "conv2")
ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
TEXT_PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj")
TEXT_MLP = ("mlp.fc1", "mlp.fc2")


@dataclass(frozen=True)
class AdaptedLayer:
    name: str  # kohya name, e.g. lora_unet_down_blocks_0_attentions_0_proj_in
    path: str  # module path inside its model
    layer: nn.Module


class LoraAdapter(nn.Module):
    """The down/up pair for one Linear or 1x1 Conv2d layer."""

    def __init__(self, layer: nn.Module, rank: int, alpha: float) -> None:
        super().__init__()
        if isinstance(layer, nn.Linear):
            features_in, features_out = layer.in_features, layer.out_features
            rank = min(rank, features_in, features_out)
            self.down: nn.Module = nn.Linear(features_in, rank, bias=False)
            self.up: nn.Module = nn.Linear(rank, features_out, bias=False)
        elif isinstance(layer, nn.Conv2d) and layer.groups == 1:
            # kohya's LoCon: down takes the layer's kernel, stride and padding; up is 1x1
            features_in, features_out = layer.in_channels, layer.out_channels
            rank = min(rank, features_in, features_out)
            self.down = nn.Conv2d(
                features_in, rank, layer.kernel_size, layer.stride, layer.padding, layer.dilation, bias=False
            )
            self.up = nn.Conv2d(rank, features_out, 1, bias=False)
        else:
            raise TypeError(f"LoRA adapts Linear and Conv2d layers, not {type(layer).__name__}")
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        self.rank = rank
        self.alpha = float(alpha)
        self.multiplier = 1.0

    @property
    def scale(self) -> float:
        return self.multiplier * self.alpha / self.rank

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        weight_dtype = self.down.weight.dtype
        return self.up(self.down(inputs.to(weight_dtype))) * self.scale


def _is_adaptable(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.kernel_size == (1, 1))


def unet_layers(unet: nn.Module, targets: str = "transformer") -> list[AdaptedLayer]:
    """The UNet layers to adapt (see the module docstring), in module order."""
    if targets not in UNET_TARGETS:
        raise ValueError(f"unknown LoRA targets {targets!r}; choose one of {', '.join(UNET_TARGETS)}")
    from diffusers.models.transformers.transformer_2d import Transformer2DModel

    found: list[AdaptedLayer] = []
    if targets == "locon":
        found += _resnet_convolutions(unet)
    for block_path, block in unet.named_modules():
        if not isinstance(block, Transformer2DModel):
            continue
        for inner_path, layer in block.named_modules():
            if not inner_path or not _is_adaptable(layer):
                continue
            if targets != "transformer" and not inner_path.endswith(ATTENTION_PROJECTIONS):
                continue
            if targets == "cross-attention" and ".attn2." not in f".{inner_path}":
                continue
            path = f"{block_path}.{inner_path}"
            found.append(AdaptedLayer("lora_unet_" + path.replace(".", "_"), path, layer))
    return found


def _resnet_convolutions(unet: nn.Module) -> list[AdaptedLayer]:
    from diffusers.models.resnet import ResnetBlock2D

    found = []
    for block_path, block in unet.named_modules():
        if isinstance(block, ResnetBlock2D):
            for name in RESNET_CONVOLUTIONS:
                path = f"{block_path}.{name}"
                found.append(AdaptedLayer("lora_unet_" + path.replace(".", "_"), path, getattr(block, name)))
    return found


def text_encoder_layers(encoder: nn.Module, prefix: str) -> list[AdaptedLayer]:
    """A CLIP text encoder's attention and MLP projections; other encoders have no agreed key names."""
    if "CLIPText" not in type(encoder).__name__:
        raise ValueError(
            f"LoRA on a {type(encoder).__name__} text encoder is not supported: other apps read "
            "text-encoder LoRA keys only for CLIP encoders (train the UNet only)"
        )
    # transformers 5 dropped the ``text_model.`` level; kohya's (and everyone's) keys keep it.
    kohya_root = "" if hasattr(encoder, "text_model") else "text_model."
    found = []
    for path, layer in encoder.named_modules():
        if isinstance(layer, nn.Linear) and ".layers." in path and path.endswith(TEXT_PROJECTIONS + TEXT_MLP):
            found.append(AdaptedLayer(f"{prefix}_" + (kohya_root + path).replace(".", "_"), path, layer))
    return found


class LoraNetwork(nn.Module):
    """The adapters of one training run; ``attach`` hooks them into their layers."""

    def __init__(self, layers: list[AdaptedLayer], rank: int, alpha: float) -> None:
        super().__init__()
        if not layers:
            raise ValueError("the model has no layers LoRA can adapt (no transformer blocks found)")
        self.adapters = nn.ModuleDict({item.name: LoraAdapter(item.layer, rank, alpha) for item in layers})
        self._layers = {item.name: item.layer for item in layers}  # not submodules: the base stays out
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []

    def attach(self) -> None:
        self.detach()
        for name, layer in self._layers.items():
            self._hooks.append(layer.register_forward_hook(self._hook_for(self.adapters[name])))

    def detach(self) -> None:
        for handle in self._hooks:
            handle.remove()
        self._hooks = []

    @staticmethod
    def _hook_for(adapter: LoraAdapter):
        def add_adapter(_layer: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
            if adapter.multiplier == 0:
                return None  # exactly the base layer, and no wasted work
            return output + adapter(args[0]).to(output.dtype)

        return add_adapter

    def set_multiplier(self, value: float) -> None:
        for adapter in self.adapters.values():
            adapter.multiplier = float(value)

    def named_adapters(self) -> Iterator[tuple[str, LoraAdapter]]:
        yield from self.adapters.items()  # type: ignore[misc]

    def kohya_state_dict(self, dtype: torch.dtype = torch.float16) -> dict[str, torch.Tensor]:
        """``<name>.lora_down.weight`` / ``.lora_up.weight`` / ``.alpha`` for every adapter."""
        tensors: dict[str, torch.Tensor] = {}
        for name, adapter in self.named_adapters():
            tensors[f"{name}.lora_down.weight"] = adapter.down.weight.detach().to("cpu", dtype).contiguous()
            tensors[f"{name}.lora_up.weight"] = adapter.up.weight.detach().to("cpu", dtype).contiguous()
            tensors[f"{name}.alpha"] = torch.tensor(adapter.alpha, dtype=dtype)
        return tensors

    @torch.no_grad()
    def load_kohya_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """The inverse of ``kohya_state_dict``; every adapter must be in ``tensors`` and nothing else."""
        expected = {
            f"{name}.{part}"
            for name in self.adapters
            for part in ("lora_down.weight", "lora_up.weight", "alpha")
        }
        if set(tensors) != expected:
            missing, extra = sorted(expected - set(tensors))[:3], sorted(set(tensors) - expected)[:3]
            raise ValueError(f"LoRA keys do not match this model (missing {missing}, unexpected {extra})")
        for name, adapter in self.named_adapters():
            adapter.down.weight.copy_(tensors[f"{name}.lora_down.weight"])
            adapter.up.weight.copy_(tensors[f"{name}.lora_up.weight"])
            adapter.alpha = float(tensors[f"{name}.alpha"])
