"""Resumable training state: one ``.pt`` file written atomically, read with ``weights_only=True``.

Randomness is derived from (seed, step) rather than stored (see :func:`step_generator`), so the
state to save is just weights, optimizer moments and the step.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CHECKPOINT_NAME
    partial = path.with_suffix(".pt.partial")
    torch.save(state, partial)
    os.replace(partial, path)  # a crash mid-write never leaves a half checkpoint behind
    return path


def load_checkpoint(folder: Path) -> dict[str, Any] | None:
    path = folder / CHECKPOINT_NAME
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def step_generator(seed: int, step: int, stream: int = 0) -> torch.Generator:
    """A generator that depends only on (seed, step, stream): a resumed run draws the same numbers."""
    generator = torch.Generator()
    generator.manual_seed((seed * 1_000_003 + step) * 16 + stream)
    return generator


def learning_rate_at(step: int, peak: float, floor: float, warmup: int, total: int) -> float:
    """Linear warm-up to ``peak``, then cosine decay to ``floor`` at ``total`` steps."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def set_learning_rate(optimizer: torch.optim.Optimizer, value: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = value
