"""Before an SD 3 / FLUX model loads: does the machine hold it? A 12 B transformer in bf16 on a 24 GB
machine would swap for minutes or be killed; the user gets one sentence with the ways that fit
instead (engine.flow_models.memory_sentence), and can load anyway (model setting
``skip_memory_check``, ``ldm-studio generate --skip-memory-check``)."""

from __future__ import annotations

from typing import Any

from ldm_studio.engine.errors import ModelLoadError

SKIP_SETTING = "skip_memory_check"
PRECISION_NAMES = {"torch.float32": "float32", "torch.bfloat16": "bfloat16", "torch.float16": "float16"}


def available_memory(device: Any, cpu_offload: bool = False) -> int:
    """Bytes free where the weights will live: the GPU's free memory, or RAM (CPU, or CUDA with
    CPU offload, where the weights wait in RAM)."""
    import psutil
    import torch

    if device.type == "cuda" and not cpu_offload:
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "mps":
        return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    return int(psutil.virtual_memory().available)


def check_memory(
    info: Any, device: Any, dtype: Any, savers: dict[str, bool], available: int | None = None
) -> None:
    """ModelLoadError with the sentence when ``info`` (a flow model's ModelInfo) will not fit."""
    from ldm_studio.engine.checkpoints.info import FLOW_FAMILIES
    from ldm_studio.engine.flow_models import memory_sentence

    if info.family not in FLOW_FAMILIES or not info.parameters:
        return
    precision = PRECISION_NAMES.get(str(dtype), "float32")
    if available is None:
        available = available_memory(device, bool(savers.get("cpu_offload")))
    sentence = memory_sentence(
        info.parameters, precision, available, info.stored_bytes, device.type, info.family
    )
    if sentence:
        raise ModelLoadError(f"{info.path.name}: {sentence}")
