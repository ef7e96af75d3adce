"""Live previews of the model's current estimate of the clean image (x0).

Written as small pure functions over tensors, in the manner of k-diffusion: no hidden state.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# re-exported: most engine code imports the settings from here
from ldm_studio.engine.preview_settings import PreviewMode, PreviewSettings  # noqa: F401


@dataclass(frozen=True)
class LatentProjection:
    """RGB in [-1, 1] ≈ latent · weights + bias, for the latent as the UNet sees it (scaled)."""

    weights: np.ndarray  # (latent channels, 3)
    bias: np.ndarray  # (3,)

    def to_json(self) -> str:
        return json.dumps(
            {"latent_rgb_weights": self.weights.tolist(), "latent_rgb_bias": self.bias.tolist()}, indent=1
        )

    @classmethod
    def from_json(cls, text: str) -> LatentProjection:
        data = json.loads(text)
        weights = np.asarray(data["latent_rgb_weights"], dtype=np.float32)
        bias = np.asarray(data.get("latent_rgb_bias", [0.0, 0.0, 0.0]), dtype=np.float32)
        if weights.ndim != 2 or weights.shape[1] != 3 or bias.shape != (3,):
            raise ValueError("a preview projection needs a (channels x 3) weight table and 3 biases")
        return cls(weights, bias)

    @classmethod
    def load(cls, path: Path) -> LatentProjection:
        return cls.from_json(path.read_text(encoding="utf-8"))

    def apply(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) latents -> (B, 3, H, W) RGB in roughly [-1, 1]."""
        weights = torch.from_numpy(self.weights).to(latents.device, torch.float32)
        bias = torch.from_numpy(self.bias).to(latents.device, torch.float32)
        return torch.einsum("bchw,cr->brhw", latents.float(), weights) + bias[None, :, None, None]


def synthetic_images(count: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """Colourful smooth images in [-1, 1] covering the colour cube, plus white and black fields."""
    coarse = torch.rand(count, 3, 4, 4, generator=generator) * 2 - 1
    images = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)
    images[0] = 1.0  # white: the background of most small-model data
    if count > 1:
        images[1] = -1.0
    return images


@torch.no_grad()
def fit_latent_projection(
    vae: torch.nn.Module, *, image_size: int = 128, count: int = 8, seed: int = 0
) -> LatentProjection:
    """Least-squares fit of the VAE's decoded colours from its (scaled) latents."""
    config = vae.config
    scaling = float(getattr(config, "scaling_factor", 1.0) or 1.0)
    shift = float(getattr(config, "shift_factor", 0.0) or 0.0)
    parameter = next(vae.parameters())
    images = synthetic_images(count, image_size, torch.Generator().manual_seed(seed))
    images = images.to(parameter.device, parameter.dtype)
    raw_latents = vae.encode(images).latent_dist.mean
    decoded = vae.decode(raw_latents).sample.float()
    factor = image_size // raw_latents.shape[-1]
    targets = F.avg_pool2d(decoded, factor)  # decoded colour over each latent pixel's footprint
    scaled = (raw_latents.float() - shift) * scaling
    inputs = scaled.permute(0, 2, 3, 1).reshape(-1, scaled.shape[1])
    outputs = targets.permute(0, 2, 3, 1).reshape(-1, 3)
    design = torch.cat([inputs, torch.ones(inputs.shape[0], 1)], dim=1).cpu()
    solution = torch.linalg.lstsq(design, outputs.cpu()).solution
    return LatentProjection(solution[:-1].numpy().astype(np.float32), solution[-1].numpy().astype(np.float32))


def x0_from_model_output(
    model_output: torch.Tensor, sample: torch.Tensor, alpha_cumprod: float, prediction_type: str
) -> torch.Tensor:
    """x0 for schedulers that do not return it (DPM++, UniPC, PNDM...): invert the forward process."""
    alpha = math.sqrt(alpha_cumprod)
    sigma = math.sqrt(1.0 - alpha_cumprod)
    if prediction_type == "v_prediction":
        return alpha * sample - sigma * model_output
    if prediction_type == "sample":
        return model_output
    return (sample - sigma * model_output) / alpha


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] -> (B, H, W, 3) uint8."""
    scaled = ((images.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()


def tile(images: np.ndarray, columns: int = 4, gap: int = 2) -> np.ndarray:
    """Lay a batch (B, H, W, 3) out as one image, a few per row."""
    count, height, width, _ = images.shape
    if count == 1:
        return images[0]
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    grid = np.full(
        (rows * height + (rows - 1) * gap, columns * width + (columns - 1) * gap, 3), 255, dtype=np.uint8
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = row * (height + gap), column * (width + gap)
        grid[top : top + height, left : left + width] = image
    return grid


def fast_preview(x0: torch.Tensor, projection: LatentProjection, size: tuple[int, int]) -> np.ndarray:
    """The projected x0, upsampled smoothly to the output size so it reads like the final image."""
    rgb = projection.apply(x0)
    rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
    return tile(to_uint8(rgb))
