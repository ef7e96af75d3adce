"""Pickled checkpoints (``.ckpt``, ``.pt``, ``.pth``, ``.bin``), opened without running their code.

Only ``torch.load(weights_only=True)`` is used. Checkpoints written by training scripts often carry
numpy scalars (``global_step``, ``epoch``) that ``weights_only`` refuses; exactly the numpy globals
such a scalar needs are allowed, and only when a static scan of the pickle finds nothing else.
Anything that asks for more (``os.system``, ``builtins.exec``, a custom class) is refused with a
sentence that names what it asked for.
"""

from __future__ import annotations

import contextlib
import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ldm_studio.engine.checkpoints.tensors import TensorTable
from ldm_studio.engine.errors import ModelLoadError

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTOCOL_OPCODE = 0x80

# What a pickled numpy scalar (np.int64(5), np.float64(0.5)...) needs: the scalar constructor (its
# module moved in numpy 2), the dtype, and the dtype's class, which numpy >= 1.25 pickles as a type.
NUMPY_SCALAR_GLOBALS = frozenset(
    {"numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype"}
)
NUMERIC_SCALAR_TYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
)

TORCH_DTYPE_NAMES = {
    "torch.float32": "F32",
    "torch.float16": "F16",
    "torch.bfloat16": "BF16",
    "torch.float64": "F64",
    "torch.int64": "I64",
    "torch.int32": "I32",
    "torch.int16": "I16",
    "torch.int8": "I8",
    "torch.uint8": "U8",
    "torch.bool": "BOOL",
}


def sniff_format(path: Path) -> str:
    """'zip' (torch.save), 'pickle' (legacy torch.save or plain pickle), 'safetensors', or 'unknown'."""
    try:
        with path.open("rb") as stream:
            head = stream.read(16)
    except OSError as error:
        raise ModelLoadError(f"{path.name} cannot be read: {error.strerror or error}") from error
    if not head:
        raise ModelLoadError(f"{path.name} is empty (0 bytes)")
    if head.startswith(ZIP_MAGIC):
        return "zip"
    # safetensors before pickle: a header length whose low byte is 0x80 (e.g. 21,120 bytes) starts
    # with the pickle PROTO opcode too, but no pickle has "{" at offset 8 after a small length.
    if len(head) >= 9 and int.from_bytes(head[:8], "little") < 100 * 1024 * 1024 and head[8:9] == b"{":
        return "safetensors"
    if head[0] == PICKLE_PROTOCOL_OPCODE:
        return "pickle"
    return "unknown"


def unsafe_globals(path: Path) -> list[str] | None:
    """Globals the pickle names beyond torch's own allowlist; None when it cannot be scanned statically."""
    import torch

    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:  # legacy (non-zip) files cannot be scanned; weights_only still guards them
        return None


def _numpy_scalar_allowlist(names: list[str]) -> list[Any]:
    import numpy as np

    allowed: list[Any] = [(np.dtype, "numpy.dtype")]
    scalar = _numpy_scalar_constructor()
    for name in names:
        if name.endswith(".scalar"):
            allowed.append((scalar, name))
    allowed.extend(type(np.dtype(kind)) for kind in NUMERIC_SCALAR_TYPES)
    return allowed


def _numpy_scalar_constructor() -> Any:
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar
    return scalar


def refusal(path: Path, wanted: list[str]) -> ModelLoadError:
    names = ", ".join(wanted[:5]) + (" …" if len(wanted) > 5 else "")
    return ModelLoadError(
        f"{path.name} was refused: it is a pickle that asks for {names}, which could run code on this "
        "computer; LDM Studio only opens checkpoints that hold plain tensors (use a .safetensors "
        "version of this model, or convert it with a tool you trust)"
    )


@contextlib.contextmanager
def safe_unpickling(path: Path) -> Iterator[None]:
    """Allow exactly the numpy scalar globals this checkpoint needs, or refuse it before loading."""
    import torch

    wanted = unsafe_globals(path)
    if wanted:
        disallowed = [name for name in wanted if name not in NUMPY_SCALAR_GLOBALS]
        if disallowed:
            raise refusal(path, disallowed)
        with torch.serialization.safe_globals(_numpy_scalar_allowlist(wanted)):
            yield
        return
    yield


def explain_load_error(path: Path, error: BaseException) -> ModelLoadError:
    """One sentence for a failed torch.load, from the real cause deep in the exception chain."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, pickle.UnpicklingError) or "Weights only load failed" in str(cause):
            text = str(cause)
            found = re.findall(r"GLOBAL ([\w.]+)", text) or re.findall(r"got <class '([\w.]+)'>", text)
            if found:
                return refusal(path, sorted(set(found)))
            if "Weights only load failed" in text:
                return ModelLoadError(
                    f"{path.name} was refused: it holds Python objects other than tensors, which "
                    "LDM Studio does not unpickle"
                )
            return ModelLoadError(
                f"{path.name} is not a PyTorch checkpoint or is damaged ({_first_line(cause)})"
            )
        cause = cause.__cause__ or cause.__context__
    text = _first_line(error)
    if "central directory" in text or "zip archive" in text or "unexpected EOF" in text.lower():
        return ModelLoadError(f"{path.name} is damaged or truncated ({text})")
    return ModelLoadError(f"{path.name} could not be read as a PyTorch checkpoint ({text})")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:200]


def torch_load_safely(path: Path, kind: str, *, mmap: bool = True) -> Any:
    """``torch.load`` with weights_only=True (no code from the file runs) and the project's allowlist;
    every failure becomes a ModelLoadError with its reason. ``kind`` is :func:`sniff_format`'s answer."""
    import torch

    try:
        with safe_unpickling(path):
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=mmap and kind == "zip")
    except ModelLoadError:
        raise
    except Exception as error:  # torch raises UnpicklingError, RuntimeError, EOFError, ValueError...
        raise explain_load_error(path, error) from error


def load_state_dict(path: Path, *, mmap: bool = True) -> dict[str, Any]:
    """The checkpoint's tensors (nested ``state_dict`` unwrapped), loaded with weights_only=True."""
    import torch

    kind = sniff_format(path)
    if kind == "safetensors":
        raise ModelLoadError(
            f"{path.name} is a safetensors file with a {path.suffix} name; rename it to .safetensors"
        )
    if kind == "unknown":
        raise ModelLoadError(f"{path.name} is not a PyTorch checkpoint (unrecognised content)")
    loaded = torch_load_safely(path, kind, mmap=mmap)
    while isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ModelLoadError(f"{path.name} holds a {type(loaded).__name__}, not a table of model weights")
    return {str(key): value for key, value in loaded.items() if isinstance(value, torch.Tensor)}


def pickle_tensor_table(path: Path) -> TensorTable:
    """Names, shapes and types of a pickled checkpoint (memory-mapped: the weights stay on disk)."""
    tensors = load_state_dict(path, mmap=True)
    return TensorTable(
        shapes={name: tuple(tensor.shape) for name, tensor in tensors.items()},
        dtypes={
            name: TORCH_DTYPE_NAMES.get(str(tensor.dtype), str(tensor.dtype))
            for name, tensor in tensors.items()
        },
    )
