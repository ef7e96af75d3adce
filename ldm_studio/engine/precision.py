"""Arithmetic precision on a CPU: bfloat16 autocast where the CPU has bf16 units, float32 elsewhere.

Measured here (bench/big_model.py, SD 1.5-sized model at 512x512 with CFG, AMX CPU): bf16 autocast
takes a UNet step from ~12 s to ~4 s, and with a channels-last VAE the decode from ~19 s to ~4.5 s,
for a relative error of ~1e-2 in the UNet output and ~1.5e-2 (PSNR ~50 dB) in the image. Without
bf16 units torch emulates bf16, which is slower than float32, so the default stays float32 there.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from pathlib import Path

import torch

# CPU flags (Linux /proc/cpuinfo names) of native bf16 arithmetic: AVX512-BF16 dot products, AMX tiles.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags(cpuinfo: str) -> set[str]:
    """The feature flags listed in a /proc/cpuinfo text (x86 ``flags``, ARM ``Features``)."""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return flags


@functools.cache
def cpu_supports_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic natively (so bf16 autocast is faster than float32).

    Read from /proc/cpuinfo on Linux. Elsewhere we cannot tell native support from emulation
    (torch's own capability string says "AVX512" even on AMX machines), so the answer is False.
    """
    if platform.system() != "Linux":
        return False
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(cpu_flags(text) & BF16_FLAGS)


def wants_bf16_autocast(device: torch.device | str, dtype_choice: str = "auto") -> bool:
    """bf16 autocast only for float32 weights on a CPU with bf16 units, when the user left "auto"."""
    return torch.device(device).type == "cpu" and dtype_choice == "auto" and cpu_supports_bf16()


def autocast_context(
    device: torch.device | str, dtype_choice: str = "auto"
) -> contextlib.AbstractContextManager:
    """The region to run the UNet and VAE in: bf16 autocast (see ``wants_bf16_autocast``) or nothing.

    Open it once around the whole denoising loop, not per call: autocast keeps its bf16 copies of the
    weights until the outermost region closes, so they are made once per generation.
    """
    if wants_bf16_autocast(device, dtype_choice):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def channels_last_vae(vae: torch.nn.Module) -> None:
    """Lay the VAE's weights out channels-last: with bf16 autocast its decode runs ~2.6x faster here.

    The loader now decides layouts for the UNet and the VAE together (engine.cpu_speed, measured on
    AVX2 and AVX512-BF16 CPUs); this stays for callers that hold a bare VAE.
    """
    vae.to(memory_format=torch.channels_last)


def precision_label(device: torch.device | str, weights: torch.dtype, dtype_choice: str = "auto") -> str:
    """The arithmetic a generation really used, for its metadata: "float32", "float16",
    "float32 + bf16 autocast" (float32 weights, matmuls and convolutions in bf16)."""
    label = str(weights).removeprefix("torch.")
    if weights == torch.float32 and wants_bf16_autocast(device, dtype_choice):
        label += " + bf16 autocast"
    return label
