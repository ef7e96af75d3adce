"""Reading upscaler and tiny-autoencoder weight files: ``.safetensors``, or ``.pth``/``.pt`` pickles
opened only through ``torch.load(weights_only=True)`` (``checkpoints.pickles`` refuses anything
that asks to run code, with a sentence that names what it asked for)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.pickles import sniff_format, torch_load_safely
from ldm_studio.engine.checkpoints.tensors import read_safetensors_header
from ldm_studio.engine.errors import ModelLoadError

# Where training scripts put the weights inside a saved dict: BasicSR/Real-ESRGAN write
# {"params_ema": …} or {"params": …}; others nest a "state_dict" or "model".
NESTED_WEIGHTS = ("params_ema", "params", "state_dict", "model", "net_g")


def _unwrap(loaded: Any, name: str) -> dict[str, Any]:
    import torch

    while isinstance(loaded, dict):
        nested = next((loaded[key] for key in NESTED_WEIGHTS if isinstance(loaded.get(key), dict)), None)
        if nested is None:
            break
        loaded = nested
    if not isinstance(loaded, dict):
        raise ModelLoadError(f"{name} holds a {type(loaded).__name__}, not a table of model weights")
    tensors = {str(key): value for key, value in loaded.items() if isinstance(value, torch.Tensor)}
    if not tensors:
        raise ModelLoadError(f"{name} holds no weights")
    return tensors


def load_tensors(path: Path, *, mmap: bool = True) -> dict[str, Any]:
    """Every tensor in the file, on the CPU (memory-mapped where the format allows)."""

    kind = sniff_format(path)
    if kind == "safetensors":
        read_safetensors_header(path)  # a damaged header is refused with its reason first
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    if kind == "unknown":
        raise ModelLoadError(
            f"{path.name} is not a weights file (neither safetensors nor a PyTorch checkpoint)"
        )
    loaded = torch_load_safely(path, kind, mmap=mmap)
    return _unwrap(loaded, path.name)


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes only: the safetensors header, or a memory-mapped pickle (weights stay on disk)."""
    if sniff_format(path) == "safetensors":
        return dict(read_safetensors_header(path).shapes)
    return {name: tuple(tensor.shape) for name, tensor in load_tensors(path, mmap=True).items()}
