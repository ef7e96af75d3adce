"""FLUX.1 transformers in GGUF files (city96's ``flux1-dev-Q4_0.gguf`` and the like): BFL's key
layout, 2-D weights quantised in ggml's block formats (Q8_0, Q5_0, Q4_0, K-quants...).

The weights stay quantised in memory, as diffusers' ``GGUFParameter`` (raw blocks, one row of
blocks per output row), and each Linear dequantises its own weight when it runs, in the dtype the
matmul runs in (bf16 under the CPU's bf16 autocast, else the activations'). BFL's fused tensors
(``qkv``, ``linear1``) are split along rows, which never cuts a block: ggml blocks run along a
row. Unquantised tensors load as torch tensors; F16 / BF16 Linear weights narrower than the model
stay as stored and are cast per layer the same way. Parts (ae, clip_l, t5xxl) come from beside the
file, as for BFL's .safetensors (``flow_parts``).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.tensors import TensorTable
from ldm_studio.engine.errors import ModelLoadError

GGUF_MAGIC = b"GGUF"
PLAIN_TYPES = ("F32", "F16", "BF16", "F64")
ORIGINAL_SHAPE_KEY = "comfy.gguf.orig_shape."  # ComfyUI-GGUF's record of tensors it reshaped


def _reader(path: Path) -> Any:
    """A ``gguf.GGUFReader`` (memory-mapped: nothing is read yet); one sentence when it cannot be."""
    try:
        import gguf
    except ImportError as error:
        raise ModelLoadError(f"{path.name} is a GGUF file and the 'gguf' package is not installed") from error
    try:
        size = path.stat().st_size
        with path.open("rb") as stream:
            magic = stream.read(4)
    except OSError as error:
        raise ModelLoadError(f"{path.name} cannot be read: {error.strerror or error}") from error
    if size == 0:
        raise ModelLoadError(f"{path.name} is empty (0 bytes)")
    if magic != GGUF_MAGIC:
        raise ModelLoadError(f"{path.name} is not a GGUF file (it does not start with 'GGUF'): it is damaged")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return gguf.GGUFReader(str(path))
    except (ValueError, IndexError, KeyError, OverflowError, TypeError, UnicodeDecodeError) as error:
        detail = str(error).strip().splitlines()[0][:120] if str(error).strip() else type(error).__name__
        raise ModelLoadError(
            f"{path.name} is not a readable GGUF file: it is truncated or damaged ({detail})"
        ) from error


def _original_shape(reader: Any, tensor: Any) -> tuple[int, ...]:
    field = reader.get_field(ORIGINAL_SHAPE_KEY + tensor.name)
    if field is not None:
        return tuple(int(field.parts[index][0]) for index in field.data)
    return tuple(int(n) for n in reversed(tensor.shape))  # ggml lists the row width first


def _text_field(reader: Any, name: str) -> str:
    field = reader.get_field(name)
    if field is None or not field.data:
        return ""
    try:
        return bytes(field.parts[field.data[-1]]).decode("utf-8", "replace")
    except (TypeError, ValueError, IndexError):
        return ""


def read_gguf_table(path: Path) -> TensorTable:
    """Names, shapes (torch order) and ggml types ("Q4_0", "F32"...) of a GGUF file's tensors."""
    return _table(_reader(Path(path)))


def _table(reader: Any) -> TensorTable:
    shapes, dtypes = {}, {}
    for tensor in reader.tensors:
        shapes[tensor.name] = _original_shape(reader, tensor)
        dtypes[tensor.name] = tensor.tensor_type.name
    metadata = {"general.architecture": _text_field(reader, "general.architecture")}
    return TensorTable(shapes=shapes, dtypes=dtypes, metadata=metadata)


def quantisation(table: TensorTable) -> str:
    """The ggml type holding most of the weights ("Q4_0"), or the plain type of an unquantised file."""
    return table.main_dtype()


def unsupported_types(table: TensorTable) -> list[str]:
    """ggml types in the file that cannot be dequantised here (diffusers' dequantisers decide)."""
    from diffusers.quantizers.gguf.utils import SUPPORTED_GGUF_QUANT_TYPES

    known = {kind.name for kind in SUPPORTED_GGUF_QUANT_TYPES} | set(PLAIN_TYPES)
    return sorted(set(table.dtypes.values()) - known)


def _tensor(reader_tensor: Any, shape: tuple[int, ...], file_name: str) -> Any:
    """A torch tensor (plain types) or a GGUFParameter holding the raw blocks (quantised types)."""
    import numpy as np
    import torch
    from diffusers.quantizers.gguf.utils import GGUFParameter, dequantize_gguf_tensor

    kind = reader_tensor.tensor_type.name
    data = np.ascontiguousarray(reader_tensor.data).copy()  # off the memory map: the file may move
    if kind == "BF16":
        return torch.from_numpy(data.view(np.uint16)).view(torch.bfloat16).reshape(shape)
    if kind in PLAIN_TYPES:
        return torch.from_numpy(data).reshape(shape)
    quantised = GGUFParameter(torch.from_numpy(data), quant_type=reader_tensor.tensor_type)
    stored = tuple(quantised.quant_shape)
    if math.prod(stored) != math.prod(shape):
        raise ModelLoadError(
            f"{file_name} is damaged: its tensor {reader_tensor.name} has blocks for {stored}, not {shape}"
        )
    if len(shape) != 2 or stored != shape:
        # only Linear weights stay quantised: a row split of anything else (or of a tensor stored
        # reshaped, as ComfyUI-GGUF does with 5-D ones) could cut blocks
        return dequantize_gguf_tensor(quantised).float().reshape(shape)
    return quantised


def gguf_tensors(path: Path, prefix: str = "") -> dict[str, Any]:
    """The tensors under ``prefix`` (removed), quantised ones kept as GGUFParameter."""
    reader = _reader(Path(path))
    table = _table(reader)
    problems = unsupported_types(table)
    if problems:
        raise ModelLoadError(
            f"{Path(path).name} holds tensors in the ggml type {', '.join(problems)}, which LDM Studio "
            "cannot dequantise (Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q8_0, the K-quants and F16 / BF16 / F32 load)"
        )
    out = {}
    for tensor in reader.tensors:
        if tensor.name.startswith(prefix):
            name = tensor.name[len(prefix) :]
            out[name] = _tensor(tensor, table.shapes[tensor.name], Path(path).name)
    return out


def _linear_class() -> type:
    import torch
    from diffusers.quantizers.gguf.utils import GGUFLinear, dequantize_gguf_tensor

    class QuantisedLinear(GGUFLinear):
        """diffusers' GGUFLinear dequantising in the matmul's own dtype: under bf16 autocast a
        float32 copy would only be cast again. No CUDA kernels (they come from the hub)."""

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            kind = inputs.device.type
            dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else inputs.dtype
            weight = dequantize_gguf_tensor(self.weight).to(dtype)
            bias = self.bias.to(dtype) if self.bias is not None else None
            return torch.nn.functional.linear(inputs.to(dtype), weight, bias)

    return QuantisedLinear


def _kept_as_stored(tensor: Any, dtype: Any) -> bool:
    return hasattr(tensor, "quant_type") or (
        tensor.is_floating_point() and tensor.element_size() < dtype.itemsize
    )


def assign_quantised(
    model_class: Any, config: dict[str, Any], state: dict[str, Any], dtype: Any, label: str
) -> Any:
    """``model_class`` built on the meta device, its Linear layers holding ``state``'s quantised
    weights as they are and every other tensor cast to ``dtype``."""
    import torch

    with torch.device("meta"):
        model = model_class.from_config(config)
    wanted = set(model.state_dict())
    if set(state) != wanted:
        missing, extra = sorted(wanted - set(state)), sorted(set(state) - wanted)
        shown = ", ".join((missing or extra)[:3])
        raise ModelLoadError(f"{label} {'lacks' if missing else 'has unexpected tensors'}: {shown}")
    linear_class = _linear_class()
    kept = set()
    for name, module in list(model.named_modules()):
        weight = state.get(f"{name}.weight")
        if not isinstance(module, torch.nn.Linear) or weight is None or not _kept_as_stored(weight, dtype):
            continue
        shape = tuple(getattr(weight, "quant_shape", weight.shape))
        if shape != (module.out_features, module.in_features):
            raise ModelLoadError(
                f"{label}'s {name} is {shape}, not {(module.out_features, module.in_features)}"
            )
        with torch.device("meta"):
            layer = linear_class(
                module.in_features, module.out_features, module.bias is not None, compute_dtype=dtype
            )
        layer.requires_grad_(False)
        layer.weight = weight if isinstance(weight, torch.nn.Parameter) else torch.nn.Parameter(weight, False)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, layer)
        kept.add(f"{name}.weight")
    plain = {}
    for key, value in state.items():
        if key in kept:
            continue
        if hasattr(value, "quant_type"):  # a quantised weight of no Linear: dequantised once here
            from diffusers.quantizers.gguf.utils import dequantize_gguf_tensor

            value = dequantize_gguf_tensor(value)
        plain[key] = value.to(dtype) if value.is_floating_point() else value
    model.load_state_dict(plain, strict=False, assign=True)
    left = [name for name, tensor in model.state_dict().items() if tensor.device.type == "meta"]
    if left:
        raise ModelLoadError(f"{label} lacks weights: {', '.join(left[:3])}")
    return model.eval()


def load_gguf_transformer(path: Path, table: TensorTable, prefix: str, folder: Path, dtype: Any) -> Any:
    """The FluxTransformer2DModel of a GGUF file, its Linear weights still quantised."""
    import diffusers

    from ldm_studio.engine.checkpoints import flow_configs
    from ldm_studio.engine.checkpoints.flux_keys import convert_flux_transformer

    original = gguf_tensors(path, prefix)
    config = flow_configs.transformer(folder, table.with_prefix(prefix))
    converted = convert_flux_transformer(original)
    del original
    return assign_quantised(
        diffusers.FluxTransformer2DModel, config, converted, dtype, f"{Path(path).name}'s transformer"
    )


def stored_bytes(model: Any) -> int:
    """Bytes the model's parameters and buffers take in memory as they are held."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(math.prod(t.shape) * t.element_size() for t in tensors)
