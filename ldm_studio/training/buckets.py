"""Aspect-ratio buckets (kohya's idea): train on images of any shape without cropping them blindly.

Buckets are sizes of about ``resolution²`` pixels whose sides are multiples of ``step``; each image
goes to the bucket nearest its aspect ratio, is resized to cover it and center-cropped, so at most a
sliver is lost. A batch always comes from one bucket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True, order=True)
class Bucket:
    width: int
    height: int

    @property
    def aspect(self) -> float:
        return self.width / self.height


def bucket_step(resolution: int, vae_factor: int, unet_factor: int) -> int:
    """Side granularity: 64 px as kohya uses, ``vae_factor × 8`` for small models; always a multiple of
    what the UNet needs (its latent side must survive every downsampling)."""
    step = 64 if resolution >= 256 else vae_factor * 8
    needed = vae_factor * unet_factor
    return math.lcm(step, needed)


def make_buckets(resolution: int, step: int, max_aspect: float = 2.0) -> list[Bucket]:
    """Sizes with area <= resolution² (the square one included), aspect between 1/max and max."""
    if resolution % step:
        raise ValueError(f"resolution {resolution} is not a multiple of the bucket step {step}")
    area = resolution * resolution
    found = {Bucket(resolution, resolution)}
    width = step
    while width <= resolution * max_aspect:
        height = (area // width) // step * step
        if height >= step and max(width / height, height / width) <= max_aspect:
            found.add(Bucket(width, height))
            found.add(Bucket(height, width))
        width += step
    return sorted(found, key=lambda bucket: (bucket.aspect, bucket.width))


def nearest_bucket(width: int, height: int, buckets: list[Bucket]) -> Bucket:
    """The bucket whose aspect ratio is closest (in log space, so 2:1 and 1:2 are equally far from 1)."""
    target = math.log(width / height)
    return min(
        buckets, key=lambda bucket: (abs(math.log(bucket.aspect) - target), -bucket.width * bucket.height)
    )


def fit_to_bucket(image: Image.Image, bucket: Bucket) -> Image.Image:
    """Resize to cover the bucket, keeping the aspect ratio, then crop the middle."""
    scale = max(bucket.width / image.width, bucket.height / image.height)
    size = (max(bucket.width, round(image.width * scale)), max(bucket.height, round(image.height * scale)))
    resized = image.resize(size, Image.Resampling.LANCZOS) if size != image.size else image
    left = (resized.width - bucket.width) // 2
    top = (resized.height - bucket.height) // 2
    return resized.crop((left, top, left + bucket.width, top + bucket.height))


def load_rgb(path) -> Image.Image:  # noqa: ANN001 - a path or file object
    """An image as RGB, transparency composited on white (as the emoji data and the LDM trainer do)."""
    with Image.open(path) as image:
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def to_model_input(image: Image.Image) -> np.ndarray:
    """uint8 H x W x 3 -> float32 3 x H x W in [-1, 1]."""
    return (np.asarray(image, dtype=np.float32) / 127.5 - 1.0).transpose(2, 0, 1)
