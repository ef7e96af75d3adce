"""The LoRA trainer's data: captions (trigger word, tag shuffling, dropout), buckets and the cache.

Latents are encoded once per image at its bucket size (posterior mean and std, already scaled as
the UNet sees them); each step draws a fresh sample from them. Text states are cached once per
distinct caption too, but only when the text encoder is frozen and tags are not shuffled: otherwise
the text changes from step to step and is encoded in the step. Files named in the folder's
``holdout.txt`` are left out of training (kept for evaluation).
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldm_studio.training.buckets import (
    Bucket,
    bucket_step,
    fit_to_bucket,
    load_rgb,
    make_buckets,
    nearest_bucket,
    to_model_input,
)
from ldm_studio.training.image_folder import CaptionedImage, read_captioned_folder, read_holdout

CACHE_NAME = "lora_cache.pt"


@dataclass(frozen=True)
class CaptionRules:
    trigger: str = ""
    shuffle_tags: bool = False
    keep_tags: int = 1  # with shuffling: the first N comma-separated tags stay in place

    def apply(self, caption: str, rng: random.Random | None = None) -> str:
        tags = [tag.strip() for tag in caption.split(",") if tag.strip()]
        if self.shuffle_tags and rng is not None and len(tags) > self.keep_tags:
            rest = tags[self.keep_tags :]
            rng.shuffle(rest)
            tags = tags[: self.keep_tags] + rest
        text = ", ".join(tags)
        if self.trigger:
            text = f"{self.trigger}, {text}" if text else self.trigger
        return text


def tag_frequency(items: Sequence[CaptionedImage]) -> dict[str, int]:
    """How often each comma-separated tag occurs over all captions (kohya's ``ss_tag_frequency``)."""
    counts: Counter[str] = Counter()
    for item in items:
        for caption in item.captions:
            counts.update(tag.strip() for tag in caption.split(",") if tag.strip())
    return dict(counts.most_common())


@dataclass(frozen=True)
class FolderSummary:
    """What a folder holds, for the window's "Train a LoRA…" dialog and the CLI's first line."""

    images: int
    captioned: int
    buckets: dict[str, int]  # "WxH" -> image count


def summarise_folder(folder: Path, resolution: int, step: int, max_aspect: float = 2.0) -> FolderSummary:
    from PIL import Image

    items = read_captioned_folder(folder)
    buckets = make_buckets(resolution, step, max_aspect)
    counts: Counter[str] = Counter()
    for item in items:
        with Image.open(item.path) as image:
            bucket = nearest_bucket(image.width, image.height, buckets)
        counts[f"{bucket.width}x{bucket.height}"] += 1
    return FolderSummary(len(items), sum(1 for item in items if item.captions), dict(counts))


class _TruncationNotice(logging.Filter):
    """Drops the pipelines' "part of your input was truncated" warning: training captions longer than
    the tokenizer's window are cut exactly as they will be when generating, every step, on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "was truncated because" not in record.getMessage()


def encode_prompts(
    pipe: Any, family: str, prompts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Token states (and SDXL's pooled state) exactly as the pipeline makes them when generating."""
    device = pipe.unet.device
    pipeline_log = logging.getLogger(type(pipe).__module__)
    notice = _TruncationNotice()
    pipeline_log.addFilter(notice)
    try:
        if family == "sdxl":
            states, _, pooled, _ = pipe.encode_prompt(
                list(prompts), device=device, num_images_per_prompt=1, do_classifier_free_guidance=False
            )
            return states, pooled
        states, _ = pipe.encode_prompt(list(prompts), device, 1, False)
        return states, None
    finally:
        pipeline_log.removeFilter(notice)


@torch.no_grad()
def encode_bucket(vae: Any, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std, scaled (and shifted) into the space the UNet denoises."""
    posterior = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist
    scale = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    return ((posterior.mean.float() - shift) * scale).cpu(), (posterior.std.float() * scale).cpu()


def build_cache(
    pipe: Any,
    family: str,
    data_dir: Path,
    resolution: int,
    max_aspect: float,
    rules: CaptionRules,
    cache_text: bool,
    unet_factor: int,
) -> dict[str, Any]:
    """Everything a run needs from the folder (see the module docstring)."""
    held_out = read_holdout(data_dir)  # kept for evaluation, as the other trainers keep them
    items = [item for item in read_captioned_folder(data_dir) if item.path not in held_out]
    vae_factor = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    step = bucket_step(resolution, vae_factor, unet_factor)
    buckets = make_buckets(max(step, resolution // step * step), step, max_aspect)
    assigned: dict[Bucket, list[int]] = {}
    sizes, crops = [], []
    images = [load_rgb(item.path) for item in items]
    for index, image in enumerate(images):
        bucket = nearest_bucket(image.width, image.height, buckets)
        assigned.setdefault(bucket, []).append(index)
        scale = max(bucket.width / image.width, bucket.height / image.height)
        sizes.append((image.height, image.width))
        crops.append(
            (
                (round(image.height * scale) - bucket.height) // 2,
                (round(image.width * scale) - bucket.width) // 2,
            )
        )
    latent_mean: list[torch.Tensor | None] = [None] * len(items)
    latent_std: list[torch.Tensor | None] = [None] * len(items)
    for bucket, members in assigned.items():
        for start in range(0, len(members), 16):
            chunk = members[start : start + 16]
            pixels = torch.from_numpy(
                np.stack([to_model_input(fit_to_bucket(images[i], bucket)) for i in chunk])
            )
            means, stds = encode_bucket(pipe.vae, pixels)
            for offset, index in enumerate(chunk):
                latent_mean[index], latent_std[index] = means[offset], stds[offset]
    cache: dict[str, Any] = {
        "image_files": [str(item.path.relative_to(data_dir)) for item in items],
        "captions": [list(item.captions) or [""] for item in items],
        "tag_frequency": tag_frequency(items),
        "bucket_sizes": [(bucket.width, bucket.height) for bucket in assigned],
        "bucket_members": [members for members in assigned.values()],
        "original_sizes": sizes,
        "crop_top_left": crops,
        "latent_mean": latent_mean,
        "latent_std": latent_std,
    }
    if cache_text:
        prompts = sorted({rules.apply(caption) for captions in cache["captions"] for caption in captions})
        prompts = ["", *[p for p in prompts if p]]  # index 0: the dropped caption
        index = {prompt: number for number, prompt in enumerate(prompts)}
        states, pooled = [], []
        with torch.no_grad():
            for start in range(0, len(prompts), 64):
                chunk_states, chunk_pooled = encode_prompts(pipe, family, prompts[start : start + 64])
                states.append(chunk_states.float().cpu())
                if chunk_pooled is not None:
                    pooled.append(chunk_pooled.float().cpu())
        cache["text_prompts"] = prompts
        cache["text_states"] = torch.cat(states)
        cache["text_pooled"] = torch.cat(pooled) if pooled else None
        cache["caption_ids"] = [[index[rules.apply(c)] for c in captions] for captions in cache["captions"]]
    return cache


def cache_signature(**settings: Any) -> str:
    """What the cache depends on; a cache built with other settings is rebuilt, never reused."""
    return json.dumps(settings, sort_keys=True, default=str)


def load_or_build_cache(run_dir: Path, signature: str, build) -> dict[str, Any]:  # noqa: ANN001
    path = run_dir / CACHE_NAME
    if path.is_file():
        cache = torch.load(path, map_location="cpu", weights_only=True)
        if cache.get("signature") == signature:
            return cache
    cache = build()
    cache["signature"] = signature
    torch.save(cache, path)
    return cache
