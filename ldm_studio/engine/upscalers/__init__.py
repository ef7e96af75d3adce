"""Upscaler networks (ESRGAN, Real-ESRGAN, and through ``spandrel`` SwinIR, HAT, DAT, SPAN…) and the
built-in pixel resizes, behind one call: ``upscale(image, upscaler, scale, …)``."""

from ldm_studio.engine.upscalers.library import (
    UpscalerInfo,
    describe_upscaler,
    find_upscaler,
    scan_upscalers,
    upscaler_folders,
)
from ldm_studio.engine.upscalers.loading import UpscalerModel, load_upscaler, spandrel_module
from ldm_studio.engine.upscalers.resize import (
    BICUBIC,
    BUILTIN_RESIZES,
    LANCZOS,
    NEAREST,
    PixelResize,
    builtin_resize,
)
from ldm_studio.engine.upscalers.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, upscale

__all__ = [
    "BICUBIC",
    "BUILTIN_RESIZES",
    "DEFAULT_OVERLAP",
    "DEFAULT_TILE",
    "LANCZOS",
    "NEAREST",
    "PixelResize",
    "UpscalerInfo",
    "UpscalerModel",
    "builtin_resize",
    "describe_upscaler",
    "find_upscaler",
    "load_upscaler",
    "scan_upscalers",
    "spandrel_module",
    "upscale",
    "upscaler_folders",
]
