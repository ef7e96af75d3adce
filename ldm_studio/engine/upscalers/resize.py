"""Built-in pixel resizes that need no model file, offered beside upscaler networks."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class PixelResize:
    """A plain resampling filter; any scale factor."""

    name: str
    method: Image.Resampling

    def resize(self, image: Image.Image, size: tuple[int, int]) -> Image.Image:
        return image.resize(size, self.method)


LANCZOS = PixelResize("Lanczos", Image.Resampling.LANCZOS)
BICUBIC = PixelResize("Bicubic", Image.Resampling.BICUBIC)
NEAREST = PixelResize("Nearest", Image.Resampling.NEAREST)
BUILTIN_RESIZES = {resize.name.lower(): resize for resize in (LANCZOS, BICUBIC, NEAREST)}


def builtin_resize(name: str) -> PixelResize | None:
    """The built-in resize called ``name`` (any case; A1111 writes "Lanczos", "Nearest"), or None."""
    return BUILTIN_RESIZES.get(name.strip().lower())
