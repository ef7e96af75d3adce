"""Tiny synthetic captioned image folders and tiny configs, so training tests run in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (40, 70, 220), "yellow": (240, 210, 40)}


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("ldm_home")
    monkeypatch.setenv("LDM_STUDIO_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def draw_shape(colour: tuple[int, int, int], shape: str, size: int, offset: int) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size]
    centre = size / 2 + offset
    if shape == "circle":
        mask = (yy - centre) ** 2 + (xx - centre) ** 2 < (size / 3) ** 2
    else:
        mask = (abs(yy - centre) < size / 3) & (abs(xx - centre) < size / 3)
    pixels = np.full((size, size, 3), 255, np.uint8)
    pixels[mask] = colour
    return Image.fromarray(pixels)


@pytest.fixture(scope="session")
def shapes_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 images (4 colours x 2 shapes x 2 positions), captions in same-name .txt files."""
    folder = tmp_path_factory.mktemp("shapes")
    for colour, rgb in COLOURS.items():
        for shape in ("circle", "square"):
            for offset in (-1, 1):
                stem = f"{colour}_{shape}_{offset + 1}"
                draw_shape(rgb, shape, 16, offset).save(folder / f"{stem}.png")
                (folder / f"{stem}.txt").write_text(f"{colour} {shape}\na {shape} in {colour}\n")
    return folder
