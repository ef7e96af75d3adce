"""Sample grids during LoRA training: each prompt with the LoRA and without it, on the same seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldm_studio.training.lora_data import CaptionRules
from ldm_studio.training.lora_network import LoraNetwork
from ldm_studio.training.run_log import image_grid


def sample_prompts(cache: dict, prompts: tuple[str, ...], rules: CaptionRules, count: int = 2) -> list[str]:
    """The configured prompts, else the first distinct training captions (with the trigger word)."""
    if prompts:
        return list(prompts)
    found: list[str] = []
    for captions in cache["captions"]:
        text = rules.apply(captions[0])
        if text and text not in found:
            found.append(text)
        if len(found) == count:
            break
    return found or [rules.trigger or ""]


@torch.no_grad()
def render(
    pipe: Any, prompts: list[str], per_prompt: int, size: int, steps: int, guidance: float
) -> np.ndarray:
    """uint8 images N x H x W x 3, prompt-major, seeds 0..per_prompt-1 for every prompt."""
    from diffusers import DPMSolverMultistepScheduler

    original = pipe.scheduler
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(original.config)
    try:
        generators = [torch.Generator().manual_seed(seed) for _ in prompts for seed in range(per_prompt)]
        images = pipe(
            [prompt for prompt in prompts for _ in range(per_prompt)],
            height=size,
            width=size,
            num_inference_steps=steps,
            guidance_scale=guidance,
            generator=generators,
            output_type="np",
        ).images
    finally:
        pipe.scheduler = original
    return (np.clip(images, 0, 1) * 255).round().astype(np.uint8)


def save_sample_grid(
    pipe: Any, network: LoraNetwork, cache: dict, config: Any, rules: CaptionRules, size: int, path: Path
) -> np.ndarray:
    """Rows: one per prompt, the LoRA's images then the base's. Returns the grid as uint8 H x W x 3."""
    prompts = sample_prompts(cache, config.sample_prompts, rules)
    per_prompt = config.samples_per_prompt
    try:
        network.set_multiplier(1.0)
        with_lora = render(pipe, prompts, per_prompt, size, config.sample_steps, config.sample_guidance)
        network.set_multiplier(0.0)
        without = render(pipe, prompts, per_prompt, size, config.sample_steps, config.sample_guidance)
    finally:
        network.set_multiplier(1.0)
    tiles = []
    for row in range(len(prompts)):
        part = slice(row * per_prompt, (row + 1) * per_prompt)
        tiles += list(with_lora[part]) + list(without[part])
    grid = image_grid(tiles, columns=2 * per_prompt, scale=max(1, 128 // size))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)
    return np.asarray(grid)
