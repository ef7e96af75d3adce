"""Small LoRA runs for tests: a folder of odd-sized images and a config that trains in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ldm_studio.training.config import OptimConfig, RunConfig
from ldm_studio.training.lora_training import LoraTrainingConfig

SIZES = [(40, 30), (30, 40), (32, 32), (64, 24), (48, 48), (24, 64)]


def write_odd_folder(folder: Path) -> Path:
    """Six images of different sizes and aspect ratios with comma-separated tag captions."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index, (width, height) in enumerate(SIZES):
        pixels = np.full((height, width, 3), 255, np.uint8)
        pixels[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = rng.integers(0, 255, 3)
        Image.fromarray(pixels).save(folder / f"image{index}.png")
        (folder / f"image{index}.txt").write_text(
            f"thing {index}, square, {'red' if index % 2 else 'blue'}\n"
        )
    return folder


def tiny_lora_config(base: Path, data: Path, out: Path, steps: int, **changes) -> LoraTrainingConfig:  # noqa: ANN003
    settings = {
        "rank": 4,
        "alpha": 2.0,
        "resolution": 32,
        "trigger": "zqstyle",
        "run": RunConfig(
            seed=5,
            max_steps=steps,
            batch_size=2,
            mixed_precision="no",
            num_threads=1,
            log_every=1,
            sample_every=0,
            checkpoint_every=1000,
        ),
        "optim": OptimConfig(learning_rate=5e-3, min_learning_rate=1e-3, warmup_steps=1, weight_decay=0.0),
        **changes,
    }
    return LoraTrainingConfig(base=base, data=data, out=out, **settings)
