"""The whole denoising trajectory of one generation, kept so it can be replayed and branched.

Every real step keeps its latent, its x0 estimate and a snapshot of the sampler (its multistep
history and the random generators' states), so continuing from step k with the same settings
reproduces the original image exactly, and with other settings starts from the same point.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch

# Latents are tiny next to images (SD 1.x at 512x512: 64 KB per image per step, x0 as much again),
# so 256 MB keeps thousands of steps; past the bound later steps keep their previews only.
DEFAULT_MEMORY_BOUND = 256 * 1024 * 1024


@dataclass
class KeptStep:
    index: int  # 1-based real step
    timestep: float
    sigma: float | None
    elapsed: float
    next_call: int  # index into scheduler.timesteps of the next model call
    latents: torch.Tensor | None = None  # after this step, as the sampler holds them (CPU)
    x0: torch.Tensor | None = None  # the x0 estimate at this step (CPU, scaled latent space)
    scheduler: Any = None  # a deep copy of the sampler right after this step
    generator_states: list[torch.Tensor] | None = None
    alpha_cumprod: float | None = None  # noise level of ``latents`` in variance-preserving terms

    @property
    def branchable(self) -> bool:
        return self.latents is not None and self.scheduler is not None


@dataclass
class Trajectory:
    memory_bound: int = DEFAULT_MEMORY_BOUND
    steps: list[KeptStep] = field(default_factory=list)
    bytes_used: int = 0
    # Everything needed to continue, beyond the per-step state
    conditioning: Any = None  # engine.generation.conditioning.PromptSchedule of the original prompt
    inpaint: Any = None  # engine.generation.start.SourceImage, when inpainting or img2img
    second_pass: Any = None  # engine.generation.hires.PassRecord: hires fix's pass, for its branches

    def record(
        self,
        step: KeptStep,
        latents: torch.Tensor,
        x0: torch.Tensor,
        scheduler: Any,
        generators: list[torch.Generator],
    ) -> None:
        cost = 2 * latents.numel() * latents.element_size()
        if self.bytes_used + cost <= self.memory_bound:
            step.latents = latents.detach().to("cpu", copy=True)
            step.x0 = x0.detach().to("cpu", copy=True)
            step.scheduler = copy.deepcopy(scheduler)
            step.generator_states = [generator.get_state() for generator in generators]
            self.bytes_used += cost
        self.steps.append(step)

    def step(self, index: int) -> KeptStep:
        """Real step ``index`` (1-based)."""
        if not 1 <= index <= len(self.steps):
            raise IndexError(f"step {index} is not in this trajectory (1..{len(self.steps)})")
        return self.steps[index - 1]

    def __len__(self) -> int:
        return len(self.steps)
