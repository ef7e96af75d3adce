"""Choosing where and in what precision the model runs."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")
DTYPE_CHOICES = ("auto", "float16", "bfloat16", "float32")


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype

    @property
    def label(self) -> str:
        return f"{self.device.type.upper()} · {str(self.dtype).removeprefix('torch.')}"


def available_devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.insert(0, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.insert(0, "mps")
    return found


def pick_device(choice: str = "auto") -> torch.device:
    """CUDA, then MPS, then CPU; an explicit choice that is not available is an error."""
    if choice not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if "mps" in available_devices():
            return torch.device("mps")
        return torch.device("cpu")
    if choice not in available_devices():
        raise ValueError(f"{choice.upper()} was asked for but is not available on this machine")
    return torch.device(choice)


def pick_dtype(device: torch.device, choice: str = "auto") -> torch.dtype:
    """fp16 on CUDA, fp32 on CPU and MPS, unless the user picks otherwise."""
    if choice not in DTYPE_CHOICES:
        raise ValueError(f"unknown precision {choice!r}; choose one of {', '.join(DTYPE_CHOICES)}")
    if choice == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, choice)


def placement(device_choice: str = "auto", dtype_choice: str = "auto") -> Placement:
    device = pick_device(device_choice)
    return Placement(device, pick_dtype(device, dtype_choice))


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, so containers and taskset count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def default_cpu_threads(cores: int | None = None) -> int:
    """torch threads for generating on a CPU: every core but one, and at least one.

    The spare core keeps the window (or the shell) responsive, and it is what keeps a generation
    from collapsing when something else is busy: OpenMP threads wait for each other at every
    operation, so one of them sharing a core with another process stalls them all. Measured here
    (bench/omp_wait.py, bundled model, 2 cores, a training run on one): 2 threads took 33.5 s per
    image, 1 thread 0.62 s; on the quiet machine 2 threads took 0.50 s, 1 thread 0.63 s.
    """
    return max(1, (cores if cores is not None else usable_cores()) - 1)


def set_cpu_threads(threads: int | None = None) -> int:
    """Set torch's thread count (for the calling thread's pool) to ``threads`` or the default."""
    count = threads if threads and threads > 0 else default_cpu_threads()
    torch.set_num_threads(count)
    return count
