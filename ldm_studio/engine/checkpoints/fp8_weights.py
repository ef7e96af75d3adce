"""fp8 weights (``flux1-dev-fp8.safetensors``, ``t5xxl_fp8_e4m3fn.safetensors``) kept in fp8: each
layer's weight is stored in fp8 and cast to the compute precision (bf16 / fp32) only while the layer
runs (diffusers' layerwise casting hooks), so a 12 B transformer holds 12 GB instead of 24 or 48.
ComfyUI's *scaled* fp8 files (``scaled_fp8`` plus a ``scale_weight`` per layer) are dequantised at
load instead: their scales do not survive a plain cast."""

from __future__ import annotations

import math
import re
from typing import Any

import torch

FP8_NAMES = ("F8_E4M3", "F8_E5M2")  # safetensors' names
FP8_DTYPES = (torch.float8_e4m3fn, torch.float8_e5m2)
SCALED_MARKER = "scaled_fp8"
SCALE_SUFFIXES = (".scale_weight", ".scale_input")
# layers whose weights the hooks keep in fp8 (diffusers' layerwise casting supports these classes)
CAST_LAYERS = (
    torch.nn.Linear,
    torch.nn.Embedding,
    torch.nn.Conv1d,
    torch.nn.Conv2d,
    torch.nn.Conv3d,
    torch.nn.ConvTranspose1d,
    torch.nn.ConvTranspose2d,
    torch.nn.ConvTranspose3d,
)
# small, precision-sensitive layers computed from full-precision copies (diffusers' defaults, and
# T5's shared token embedding, which its encoder reads as embed_tokens), and T5's feed-forward
# output ``wo``, whose input T5 casts to wo's own dtype (transformers keeps it in fp32 for fp16 too)
SKIP_PATTERNS = (
    "pos_embed",
    "patch_embed",
    "norm",
    "^proj_in$",
    "^proj_out$",
    "shared",
    "embed_tokens",
    r"DenseReluDense\.wo$",
)


def fp8_share(dtypes: dict[str, str], shapes: dict[str, tuple[int, ...]], prefix: str = "") -> float:
    """The fraction of the elements under ``prefix`` stored in fp8 (0.0 for an fp16 file)."""
    total = fp8 = 0
    for name, shape in shapes.items():
        if name.startswith(prefix):
            count = math.prod(shape)
            total += count
            fp8 += count if dtypes.get(name) in FP8_NAMES else 0
    return fp8 / total if total else 0.0


def is_scaled(names: Any) -> bool:
    return any(name == SCALED_MARKER or name.endswith(SCALED_MARKER) for name in names)


def unscale(tensors: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """A scaled-fp8 state in ``dtype``: each weight times its ``scale_weight``, the scales dropped."""
    result = {}
    for name, tensor in tensors.items():
        if name.endswith(SCALE_SUFFIXES) or name.endswith(SCALED_MARKER):
            continue
        scale = (
            tensors.get(name.removesuffix(".weight") + ".scale_weight") if name.endswith(".weight") else None
        )
        value = tensor.to(dtype) if tensor.is_floating_point() else tensor
        result[name] = value * scale.to(dtype) if scale is not None else value
    return result


def keep_in_fp8(module: torch.nn.Module, compute_dtype: torch.dtype) -> bool:
    """Hook ``module``'s fp8 layers so they compute in ``compute_dtype``; any other fp8 parameter
    (a norm, an embedding the hooks skip) is cast up now. False when it holds no fp8 weight."""
    from diffusers.hooks import apply_layerwise_casting

    storage = next((p.dtype for p in module.parameters() if p.dtype in FP8_DTYPES), None)
    if storage is None:
        return False
    for name, layer in module.named_modules():
        hooked = isinstance(layer, CAST_LAYERS) and not any(re.search(p, name) for p in SKIP_PATTERNS)
        for parameter in layer.parameters(recurse=False):
            if parameter.dtype in FP8_DTYPES and not hooked:  # (a hooked layer's bias goes to fp8 too)
                parameter.data = parameter.data.to(compute_dtype)
        for buffer_name, buffer in layer.named_buffers(recurse=False):  # SD 3's positional embedding
            if buffer.dtype in FP8_DTYPES:
                layer.register_buffer(
                    buffer_name,
                    buffer.to(compute_dtype),
                    buffer_name not in layer._non_persistent_buffers_set,
                )
    apply_layerwise_casting(module, storage, compute_dtype, skip_modules_pattern=SKIP_PATTERNS)
    return True
