"""The engine's progress stream: plain immutable values, safe to hand across threads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ldm_studio.engine.request import GenerationRequest

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image


@dataclass(frozen=True)
class Started:
    request: GenerationRequest  # with the seed and size resolved
    total_steps: int


@dataclass(frozen=True)
class Step:
    index: int  # 1-based count of real denoising steps done
    total: int
    elapsed: float  # seconds since the generation started
    timestep: float  # the scheduler's timestep (or sigma-derived time) of this step
    sigma: float | None = None
    preview: np.ndarray | None = None  # H x W x 3 uint8 of the x0 estimate (a grid for batches)
    noisy: np.ndarray | None = None  # the noisy latent itself, projected the same way


@dataclass(frozen=True)
class Finished:
    images: list[Image.Image]
    request: GenerationRequest
    metadata: dict[str, Any] = field(default_factory=dict)  # model name/hash, timings, app version
    elapsed: float = 0.0
    trajectory: Any = None  # engine.trajectory.Trajectory when it was kept


@dataclass(frozen=True)
class Cancelled:
    request: GenerationRequest
    at_step: int = 0


@dataclass(frozen=True)
class Failed:
    message: str  # one readable sentence for the user
    detail: str = ""  # traceback / technical cause for the log


Event = Started | Step | Finished | Cancelled | Failed
