"""Tensor names and shapes of a checkpoint, read without loading its weights.

A ``.safetensors`` header is parsed and checked here by hand (it is 8 bytes of length and a JSON
table), so a file that lies about its sizes is refused with a sentence before any library maps it.
Pickled ``.ckpt`` files go through ``pickles`` (``torch.load(weights_only=True, mmap=True)``).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ldm_studio.engine.errors import ModelLoadError

# The safetensors library refuses headers above 100 MB; real SDXL headers are ~200 KB.
MAX_HEADER_BYTES = 100 * 1024 * 1024

# bits per element; sub-byte types are stored packed
DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E4M3": 8,
    "F8_E5M2": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
    "F4": 4,
}


@dataclass(frozen=True)
class TensorTable:
    """Every tensor's shape and storage type, plus the file's text metadata."""

    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str] = field(default_factory=dict)  # name -> "F16", "F32", "BF16"...
    metadata: dict[str, str] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.shapes

    def shape(self, name: str) -> tuple[int, ...] | None:
        return self.shapes.get(name)

    def with_prefix(self, prefix: str) -> dict[str, tuple[int, ...]]:
        """Shapes of the tensors under ``prefix``, with the prefix removed."""
        return {name[len(prefix) :]: shape for name, shape in self.shapes.items() if name.startswith(prefix)}

    def numel(self, prefix: str = "") -> int:
        return sum(math.prod(shape) for name, shape in self.shapes.items() if name.startswith(prefix))

    def main_dtype(self) -> str:
        """The storage type holding most of the elements ("F16" for a typical pruned fp16 file)."""
        totals: dict[str, int] = {}
        for name, shape in self.shapes.items():
            dtype = self.dtypes.get(name, "?")
            totals[dtype] = totals.get(dtype, 0) + math.prod(shape)
        return max(totals, key=lambda key: totals[key]) if totals else "?"


def read_safetensors_header(path: Path) -> TensorTable:
    """Parse and validate a safetensors header; raise ModelLoadError with the reason it is bad."""
    try:
        size = path.stat().st_size
        with path.open("rb") as stream:
            prefix = stream.read(8)
            if size == 0:
                raise ModelLoadError(f"{path.name} is empty (0 bytes)")
            if len(prefix) < 8:
                raise ModelLoadError(f"{path.name} is too short to be a safetensors file ({size} bytes)")
            (header_length,) = struct.unpack("<Q", prefix)
            if header_length > MAX_HEADER_BYTES:
                raise ModelLoadError(
                    f"{path.name} is not a valid safetensors file: its header claims {header_length:,} bytes "
                    f"(the limit is {MAX_HEADER_BYTES:,}); the file is damaged or not a model"
                )
            if 8 + header_length > size:
                raise ModelLoadError(
                    f"{path.name} is not a valid safetensors file: its header claims {header_length:,} bytes "
                    f"but the whole file has {size:,}; it is truncated or not a model"
                )
            raw = stream.read(header_length)
    except OSError as error:
        raise ModelLoadError(f"{path.name} cannot be read: {error.strerror or error}") from error
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ModelLoadError(
            f"{path.name} is not a valid safetensors file: its header is not readable JSON ({error})"
        ) from error
    if not isinstance(header, dict):
        raise ModelLoadError(f"{path.name} is not a valid safetensors file: its header is not a table")
    return _validated_table(path.name, header, data_size=size - 8 - header_length)


def _validated_table(name: str, header: dict, data_size: int) -> TensorTable:
    metadata_raw = header.pop("__metadata__", None) or {}
    metadata = (
        {str(key): str(value) for key, value in metadata_raw.items()}
        if isinstance(metadata_raw, dict)
        else {}
    )
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, str] = {}
    needed = 0
    for tensor, spec in header.items():
        problem = _spec_problem(spec, data_size)
        if problem:
            raise ModelLoadError(f"{name} is damaged: tensor {tensor!r} {problem}")
        shapes[tensor] = tuple(spec["shape"])
        dtypes[tensor] = spec["dtype"]
        needed = max(needed, spec["data_offsets"][1])
    if needed > data_size:
        raise ModelLoadError(
            f"{name} is truncated: its tensors need {needed:,} bytes of data but the file holds {data_size:,}"
        )
    return TensorTable(shapes=shapes, dtypes=dtypes, metadata=metadata)


def _spec_problem(spec: object, data_size: int) -> str:
    if not isinstance(spec, dict):
        return "has no description"
    dtype, shape, offsets = spec.get("dtype"), spec.get("shape"), spec.get("data_offsets")
    if dtype not in DTYPE_BITS:
        return f"has an unknown type {dtype!r}"
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        return f"has an invalid shape {shape!r}"
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(n, int) for n in offsets)
        or not 0 <= offsets[0] <= offsets[1]
    ):
        return f"has invalid data offsets {offsets!r}"
    expected = math.ceil(math.prod(shape) * DTYPE_BITS[dtype] / 8)
    if offsets[1] - offsets[0] != expected:
        claimed = offsets[1] - offsets[0]
        return f"claims {claimed:,} bytes but a {dtype} tensor of shape {shape} needs {expected:,}"
    if offsets[1] > data_size:
        return (
            f"lies beyond the end of the file (needs {offsets[1]:,} of {data_size:,} data bytes): truncated"
        )
    return ""
