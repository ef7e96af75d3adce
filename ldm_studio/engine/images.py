"""Source images and masks for image-to-image and inpainting: loading, fitting to size, to tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter, ImageOps

from ldm_studio.engine.catalog import file_sha256 as file_sha256  # re-exported: one hash for all files
from ldm_studio.engine.errors import GenerationError

RESIZE_MODES = ("resize", "crop", "pad")


def open_image(path: str | Path, mode: str = "RGB") -> Image.Image:
    path = Path(path)
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)  # phone photos carry their rotation as a flag
            if image.mode in ("RGBA", "LA", "P") and mode == "RGB":
                background = Image.new("RGBA", image.size, (255, 255, 255, 255))
                return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
            return image.convert(mode)
    except FileNotFoundError as error:
        raise GenerationError(f"The source image {path} does not exist.") from error
    except (OSError, ValueError) as error:
        raise GenerationError(f"{path.name} is not an image that can be read ({error}).") from error


def fit(
    image: Image.Image, size: tuple[int, int], mode: str = "resize", fill: int | tuple = 255
) -> Image.Image:
    """Fit to (width, height): stretch ("resize"), fill and crop the middle ("crop") or letterbox ("pad")."""
    if mode not in RESIZE_MODES:
        raise GenerationError(f"Unknown resize mode {mode!r}; use one of {', '.join(RESIZE_MODES)}.")
    if image.size == size:
        return image
    if mode == "resize":
        return image.resize(size, Image.Resampling.LANCZOS)
    if mode == "crop":
        return ImageOps.fit(image, size, Image.Resampling.LANCZOS)
    return ImageOps.pad(image, size, Image.Resampling.LANCZOS, color=fill)


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB image -> (1, 3, H, W) in [-1, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)[None]


def mask_tensor(mask: Image.Image, size: tuple[int, int], feather: float, resize_mode: str) -> torch.Tensor:
    """(1, 1, H, W) in [0, 1]; white (1) is repainted. Feathering softens the edge in pixels."""
    grey = fit(mask.convert("L"), size, resize_mode, fill=0)
    if feather > 0:
        grey = grey.filter(ImageFilter.GaussianBlur(feather))
    array = np.asarray(grey, dtype=np.float32) / 255.0
    return torch.from_numpy(array)[None, None]
