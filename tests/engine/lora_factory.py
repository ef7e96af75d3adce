"""Tiny LoRA files for the tiny test model, written with the key names real trainers use.

Names are built here from the module paths by kohya's own rule ('.' -> '_' after ``lora_unet_`` /
``lora_te_``), and LDM names from a table written out by hand for the tiny UNet, so the tests do not
borrow the engine's name mapping to check it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

# kohya's default targets: every Linear/1x1 conv inside the transformer blocks, and CLIP's attention/MLP.
UNET_TARGET_PARENTS = ("attentions",)
TE_TARGET_WORDS = ("self_attn", "mlp")

# diffusers path prefix -> LDM prefix for tests/tiny_models.build_tiny_sd's UNet (layers_per_block=1,
# CrossAttnDown, Down / Up, CrossAttnUp), counted by hand from the original UNetModel layout.
TINY_LDM_PREFIXES = {
    "down_blocks.0.attentions.0": "input_blocks.1.1",
    "mid_block.attentions.0": "middle_block.1",
    "up_blocks.1.attentions.0": "output_blocks.2.1",
    "up_blocks.1.attentions.1": "output_blocks.3.1",
    "down_blocks.0.resnets.0.conv1": "input_blocks.1.0.in_layers.2",
    "down_blocks.0.downsamplers.0.conv": "input_blocks.2.0.op",
    "down_blocks.1.resnets.0.conv2": "input_blocks.3.0.out_layers.3",
    "up_blocks.0.resnets.1.conv_shortcut": "output_blocks.1.0.skip_connection",
    "up_blocks.0.upsamplers.0.conv": "output_blocks.1.1.conv",
    "mid_block.resnets.1.time_emb_proj": "middle_block.2.emb_layers.1",
}


def unet_attention_paths(unet: nn.Module) -> list[str]:
    return [
        path
        for path, module in unet.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d)) and ".attentions." in f".{path}"
    ]


def text_encoder_paths(text_encoder: nn.Module) -> list[str]:
    return [
        path
        for path, module in text_encoder.named_modules()
        if isinstance(module, nn.Linear) and any(word in path for word in TE_TARGET_WORDS)
    ]


def ldm_mappable_paths(unet: nn.Module) -> list[str]:
    """Every Linear/conv layer under TINY_LDM_PREFIXES: the layers whose LDM names the table gives."""
    return [
        path
        for path, module in unet.named_modules()
        if isinstance(module, (nn.Linear, nn.Conv2d))
        and any(path == prefix or path.startswith(prefix + ".") for prefix in TINY_LDM_PREFIXES)
    ]


def kohya_name(prefix: str, path: str) -> str:
    return prefix + path.replace(".", "_")


def te_kohya_name(path: str, prefix: str = "lora_te_") -> str:
    # kohya trained on transformers 4, whose CLIPTextModel paths start with "text_model."
    return kohya_name(prefix, path if path.startswith("text_model.") else f"text_model.{path}")


def ldm_name(path: str) -> str:
    for prefix, ldm in sorted(TINY_LDM_PREFIXES.items(), key=lambda item: -len(item[0])):
        if path == prefix or path.startswith(prefix + "."):
            return ldm + path[len(prefix) :]
    raise KeyError(path)


def lora_factors(
    weight: torch.Tensor, rank: int, generator: torch.Generator, *, conv_kernel: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(down, up) for a layer of this weight's shape; convs get kohya's 4-D factors."""
    out_features, in_features = weight.shape[0], weight.shape[1]
    if weight.dim() == 4:
        kernel = conv_kernel or weight.shape[-1]
        down = torch.randn(rank, in_features, kernel, kernel, generator=generator) * 0.3
        up = torch.randn(out_features, rank, 1, 1, generator=generator) * 0.3
    else:
        down = torch.randn(rank, in_features, generator=generator) * 0.3
        up = torch.randn(out_features, rank, generator=generator) * 0.3
    return down, up


def kohya_lora(
    unet: nn.Module,
    text_encoder: nn.Module | None,
    *,
    rank: int = 4,
    alpha: float = 2.0,
    seed: int = 0,
    unet_paths: list[str] | None = None,
    naming: str = "diffusers",  # or "ldm": the original UNet's names
) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, torch.Tensor] = {}
    for path in unet_paths if unet_paths is not None else unet_attention_paths(unet):
        weight = unet.get_submodule(path).weight
        down, up = lora_factors(weight, rank, generator)
        name = kohya_name("lora_unet_", ldm_name(path) if naming == "ldm" else path)
        tensors[f"{name}.lora_down.weight"] = down
        tensors[f"{name}.lora_up.weight"] = up
        tensors[f"{name}.alpha"] = torch.tensor(alpha)
    if text_encoder is not None:
        for path in text_encoder_paths(text_encoder):
            weight = text_encoder.get_submodule(path).weight
            down, up = lora_factors(weight, rank, generator)
            name = te_kohya_name(path)
            tensors[f"{name}.lora_down.weight"] = down
            tensors[f"{name}.lora_up.weight"] = up
            tensors[f"{name}.alpha"] = torch.tensor(alpha)
    return tensors


def save_safetensors(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None
) -> Path:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    return path


class CreatesFile:
    """Unpickling this would create ``target``: proof that a loader ran code if the file appears."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):  # noqa: ANN204
        return (open, (str(self.target), "w"))


def malicious_pickle(path: Path, target: Path, *, tensors: dict | None = None) -> Path:
    """A torch.save zip whose pickle would create ``target`` when loaded without weights_only."""
    payload = dict(tensors or {"lora_unet_x.lora_down.weight": torch.zeros(1, 1)})
    payload["trap"] = CreatesFile(target)
    torch.save(payload, str(path))
    return path


def load_own_copy(folder: Path, dtype: torch.dtype = torch.float32):  # noqa: ANN201
    """A fresh LoadedModel of the tiny model: tests patch its weights, never the session's."""
    from ldm_studio.engine.loader import load_model

    return load_model(folder, device="cpu", dtype=str(dtype).removeprefix("torch."))
