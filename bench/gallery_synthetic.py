"""Synthetic gallery images for the gallery benchmark and demo: colourful blobs with plausible prompts.

Files are written with the real metadata encoder and atomic writer, spread over many days, so the
index, the thumbnails and the view see exactly what real galleries look like, only smaller.
"""

from __future__ import annotations

import os
import random
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import encode_png
from ldm_studio.gallery.store import prompt_slug, write_atomic_exclusive

SUBJECTS = [
    "a lighthouse on a cliff", "a red fox in the snow", "an astronaut riding a horse", "a reading nook",
    "a neon city street at night", "a bowl of ramen", "a portrait of an old sailor", "a dragon in the sky",
    "a glass terrarium", "a koi pond in autumn", "a steampunk airship", "a cat wearing a tiny hat",
    "a misty pine forest", "a desert canyon at sunset", "a robot tending a garden", "an underwater temple",
]  # fmt: skip
STYLES = ["oil painting", "watercolor", "studio photo", "concept art", "pixel art", "ink sketch", "3d render"]
EXTRAS = [
    "golden hour",
    "volumetric light",
    "highly detailed",
    "soft focus",
    "dramatic clouds",
    "pastel colors",
]
MODELS = ["tiny-emoji", "sd-1.5", "dreamshaper-8", "anything-v5"]
SAMPLERS = ["Euler a", "Euler", "DPM++ 2M Karras", "DDIM", "UniPC"]


def synthetic_prompt(rng: random.Random) -> str:
    parts = [rng.choice(SUBJECTS), rng.choice(STYLES), *rng.sample(EXTRAS, rng.randint(0, 3))]
    return ", ".join(parts)


def synthetic_image(rng: np.random.Generator, size: int) -> Image.Image:
    """A smooth gradient with a few soft colour blobs: compresses like real renders, looks like art."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    pixels = top[None, None, :] * (1 - y[..., None]) + bottom[None, None, :] * y[..., None]
    for _ in range(rng.integers(2, 6)):
        cx, cy, radius = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.08, 0.35)
        weight = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))[..., None]
        pixels = pixels * (1 - weight) + rng.uniform(0, 255, 3)[None, None, :] * weight
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def build_gallery(root: Path, count: int, *, size: int = 64, days: int = 365, seed: int = 0) -> list[Path]:
    """Write ``count`` images under ``root/YYYY-MM-DD/`` spread over the last ``days`` days."""
    rng, np_rng = random.Random(seed), np.random.default_rng(seed)
    now = time.time()
    # A handful of distinct pictures, reused: encoding cost, not pixel generation, is what we measure.
    pictures = [synthetic_image(np_rng, size) for _ in range(min(count, 64))]
    paths = []
    for number in range(count):
        created = now - (count - number) * (days * 86400 / max(count, 1))
        when = datetime.fromtimestamp(created)
        request = GenerationRequest(
            prompt=synthetic_prompt(rng),
            negative_prompt=rng.choice(["", "blurry, low quality", "text, watermark"]),
            seed=rng.randint(0, 2**32 - 1),
            steps=rng.choice([20, 25, 30]),
            guidance=rng.choice([5.0, 7.0, 7.5]),
            width=size,
            height=size,
            sampler=rng.choice(SAMPLERS),
        )
        data = encode_png(
            pictures[number % len(pictures)],
            request,
            model_name=rng.choice(MODELS),
            model_hash="0123456789",
            created=created,
        )
        folder = root / when.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{when:%Y%m%d-%H%M%S}-{request.seed}-{prompt_slug(request.prompt)}.png"
        path = (
            write_atomic_exclusive(data, folder / name)
            if number % 1000 == 0
            else _fast_write(data, folder / name)
        )
        os.utime(path, (created, created))
        paths.append(path)
    return paths


def _fast_write(data: bytes, path: Path) -> Path:
    # Bulk set-up only: skipping fsync makes building 50,000 files minutes faster; real saves fsync.
    with open(path, "xb") as handle:
        handle.write(data)
    return path
