"""The fastest CPU path that still computes the same image: which layout and arithmetic "auto" uses.

A pure function (``plan_for``) decides from the CPU's description — torch's capability string and
the /proc/cpuinfo flags — so every kind of CPU is testable with fake strings; ``cpu_speed_plan``
feeds it this machine. Only the user's "auto" precision gets these speed-ups: an explicit
"float32" is the exact reference path (contiguous weights, no autocast), which is what the golden
images in tests/engine/test_same_pixels.py are rendered with. CUDA and MPS are never touched.

Measured (bench/cpu_speed.py and the figures in bench/README.md, SD 1.5-sized model, 512x512):
- bf16 autocast needs native bf16 units (AVX512-BF16 or AMX). With them it is the big win; without
  them torch emulates bf16 and it is slower than float32 (engine.precision).
- channels-last pays for the VAE decode on every x86 kind measured (AVX2 fp32 22.3 -> 17.3 s; with
  bf16 it is what makes the bf16 decode fast), and for the SD-sized UNet on AVX2 fp32 (12.8 ->
  11.5 s). On a tiny UNet (the bundled 32 px model, FACTS.md) it was slower, so the UNet follows the
  model's size (``UNET_CHANNELS_LAST_MIN_WIDTH``).
"""

from __future__ import annotations

from dataclasses import dataclass

# torch.backends.cpu.get_cpu_capability() values on x86 that have fast NHWC convolutions in oneDNN.
X86_CAPABILITIES = frozenset({"AVX2", "AVX512", "AVX512_VNNI", "AVX512_BF16", "AMX"})
# CPU flags (Linux /proc/cpuinfo names) of native bf16 arithmetic: AVX512-BF16 dot products, AMX tiles.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# UNet base width (block_out_channels[0]) from which channels-last pays: SD 1.x/2.x/XL use 320; the
# tiny test and bundled models (32-128) were slower channels-last.
UNET_CHANNELS_LAST_MIN_WIDTH = 256


@dataclass(frozen=True)
class CpuSpeedPlan:
    """How the UNet and VAE run: bf16 autocast or not, and which of them are laid out channels-last."""

    bf16_autocast: bool = False
    channels_last_unet: bool = False
    channels_last_vae: bool = False

    @property
    def label(self) -> str:
        """What the image metadata records beside the weights' dtype, e.g. "bf16 autocast, channels-last"."""
        parts = ["bf16 autocast"] if self.bf16_autocast else []
        layout = [
            name for name, on in (("UNet", self.channels_last_unet), ("VAE", self.channels_last_vae)) if on
        ]
        if layout:
            parts.append("channels-last " + "+".join(layout))
        return ", ".join(parts)


EXACT = CpuSpeedPlan()  # the float32 reference path


def plan_for(
    device_type: str,
    dtype_choice: str,
    capability: str,
    flags: frozenset[str] | set[str],
    unet_width: int = 320,
) -> CpuSpeedPlan:
    """The plan for a device, the user's precision choice, and the CPU's capability string and flags.

    Pure: no torch, no file reads. ``capability`` is torch's ``get_cpu_capability()`` ("AVX2",
    "AVX512", "DEFAULT", ...); ``flags`` the cpuinfo flags; ``unet_width`` the UNet's first block width.
    """
    if device_type != "cpu" or dtype_choice != "auto":
        return EXACT
    if capability.upper() not in X86_CAPABILITIES:
        # ARM / unknown: no measurement says channels-last or bf16 autocast pays there
        return EXACT
    bf16 = bool(set(flags) & BF16_FLAGS)
    return CpuSpeedPlan(
        bf16_autocast=bf16,
        channels_last_unet=unet_width >= UNET_CHANNELS_LAST_MIN_WIDTH,
        channels_last_vae=True,
    )


def cpu_speed_plan(device: object, dtype_choice: str = "auto", unet_width: int = 320) -> CpuSpeedPlan:
    """``plan_for`` this machine's CPU (torch's capability string and /proc/cpuinfo flags)."""
    import torch

    from ldm_studio.engine.precision import cpu_supports_bf16

    device_type = torch.device(device).type  # type: ignore[arg-type]
    if device_type != "cpu":
        return EXACT
    flags = BF16_FLAGS if cpu_supports_bf16() else frozenset()
    return plan_for(device_type, dtype_choice, torch.backends.cpu.get_cpu_capability(), flags, unet_width)


def unet_width(pipe: object) -> int:
    """The UNet's first block width (0 for a transformer-based model, which has no such UNet)."""
    unet = getattr(pipe, "unet", None)
    channels = getattr(getattr(unet, "config", None), "block_out_channels", None)
    return int(channels[0]) if channels else 0


def apply_layout(pipe: object, plan: CpuSpeedPlan) -> None:
    """Lay the UNet and/or VAE weights out channels-last as the plan says (same numbers, other order)."""
    import torch

    if plan.channels_last_unet and getattr(pipe, "unet", None) is not None:
        pipe.unet.to(memory_format=torch.channels_last)  # type: ignore[attr-defined]
    if plan.channels_last_vae and getattr(pipe, "vae", None) is not None:
        pipe.vae.to(memory_format=torch.channels_last)  # type: ignore[attr-defined]
