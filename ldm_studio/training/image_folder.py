"""A folder of images with captions: the training data format.

Captions come from ``metadata.jsonl`` (one JSON object a line with ``file_name`` and ``text``, a string
or a list of strings) or, without it, from a same-name ``.txt`` file beside each image (one caption a
line). An optional ``holdout.txt`` lists files kept out of autoencoder training for evaluation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


@dataclass(frozen=True)
class CaptionedImage:
    path: Path
    captions: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.path.name


def read_captioned_folder(folder: Path) -> list[CaptionedImage]:
    """Every image in ``folder`` (recursively) with its captions, sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such data folder: {folder}")
    metadata = folder / "metadata.jsonl"
    items: list[CaptionedImage] = []
    if metadata.is_file():
        for line_number, line in enumerate(metadata.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            record = json.loads(line)
            text = record.get("text", "")
            captions = (text,) if isinstance(text, str) else tuple(text)
            path = folder / record["file_name"]
            if not path.is_file():
                raise FileNotFoundError(f"{metadata}:{line_number} names a missing image {path}")
            items.append(CaptionedImage(path, tuple(c.strip() for c in captions if c.strip())))
    else:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            caption_file = path.with_suffix(".txt")
            lines = caption_file.read_text(encoding="utf-8").splitlines() if caption_file.is_file() else []
            items.append(CaptionedImage(path, tuple(line.strip() for line in lines if line.strip())))
    if not items:
        raise ValueError(f"{folder} holds no images (.png, .jpg, .webp) with captions")
    return sorted(items, key=lambda item: item.path)


def read_holdout(folder: Path) -> set[Path]:
    """Files named in ``holdout.txt`` (paths relative to the folder); empty when there is none."""
    listing = Path(folder) / "holdout.txt"
    if not listing.is_file():
        return set()
    return {Path(folder) / line.strip() for line in listing.read_text().splitlines() if line.strip()}


def split_holdout(items: list[CaptionedImage], folder: Path, fraction: float) -> tuple[list, list]:
    """(train, held out): ``holdout.txt`` when the folder has one, else every ``1/fraction``-th image."""
    listed = read_holdout(folder)
    if listed:
        held = [item for item in items if item.path in listed]
    else:
        stride = max(2, round(1 / fraction)) if fraction > 0 else 0
        held = items[::stride] if stride else []
    held_paths = {item.path for item in held}
    return [item for item in items if item.path not in held_paths], held


def load_image_array(path: Path, size: int) -> np.ndarray:
    """An RGB image as uint8 HxWx3 at ``size``, transparency composited on white."""
    with Image.open(path) as image:
        rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    rgb = Image.alpha_composite(white, rgba).convert("RGB")
    if rgb.size != (size, size):
        rgb = rgb.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8)


def load_images(items: list[CaptionedImage], size: int) -> np.ndarray:
    """All images as one uint8 array N x H x W x 3 (emoji-sized datasets fit in memory)."""
    return np.stack([load_image_array(item.path, size) for item in items])
