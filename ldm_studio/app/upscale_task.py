"""Upscaling a gallery image: the choices the dialog offers, and the run on the worker thread.

The run loads the upscaler, enlarges the image in overlapping tiles (progress after each, cancel
checked before each) and only then writes the new PNG, so a cancelled or failed run leaves no file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

FACTORS = (2, 4)


@dataclass(frozen=True)
class UpscalerChoice:
    """One entry of the dialog's list: a built-in resize or a file in the upscaler library."""

    label: str  # what the list shows
    value: str  # what ``engine.upscalers.find_upscaler`` takes: a built-in's name or the file's path
    scale: int | None  # the network's own factor; None for a built-in (any factor) or when unknown
    problem: str = ""  # why it cannot be used here (shown, and the entry disabled)


@dataclass(frozen=True)
class UpscaleJob:
    source: Path
    upscaler: str  # an ``UpscalerChoice.value``
    scale: float
    folder: Path  # where the new image goes (the gallery's folder for today)
    device: str = "auto"
    tile: int | None = None  # source pixels; None: the engine's default
    overlap: int | None = None


def upscaler_choices(folders: list[Path] | None = None) -> list[UpscalerChoice]:
    """The built-in resizes, then every upscaler file the library finds (described, not loaded)."""
    from ldm_studio.engine.upscalers import BUILTIN_RESIZES, scan_upscalers

    choices = [UpscalerChoice(resize.name, resize.name, None) for resize in BUILTIN_RESIZES.values()]
    for info in scan_upscalers(folders):
        label = f"{info.name} ({info.scale}×)" if info.scale else info.name
        choices.append(UpscalerChoice(label, str(info.path), info.scale, info.problem))
    return choices


def default_factor(choice: UpscalerChoice) -> int:
    """The network's own factor where the dialog offers it, else ×2."""
    return choice.scale if choice.scale in FACTORS else FACTORS[0]


def run_upscale(job: UpscaleJob, progress: Callable[..., None], should_stop: Callable[[], bool]) -> Path:
    """Enlarge ``job.source`` and save it as a new PNG; raises CancelledError when stopped."""
    from PIL import Image, UnidentifiedImageError

    from ldm_studio.engine.device import pick_device
    from ldm_studio.engine.upscalers import DEFAULT_OVERLAP, DEFAULT_TILE, find_upscaler, upscale
    from ldm_studio.gallery.upscaled import save_upscaled

    try:
        with Image.open(job.source) as opened:
            opened.load()
            image = opened.copy()
            image.info = dict(opened.info)
    except FileNotFoundError as error:
        raise ValueError(f"{job.source.name} is no longer there: it cannot be upscaled.") from error
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{job.source.name} could not be read to upscale it ({error}).") from error
    upscaler = find_upscaler(job.upscaler, device=str(pick_device(job.device)))
    result = upscale(
        image,
        upscaler,
        job.scale,
        tile=job.tile or DEFAULT_TILE,
        overlap=DEFAULT_OVERLAP if job.overlap is None else job.overlap,
        on_progress=lambda done, total: progress(done, total),
        should_stop=should_stop,
    )
    if should_stop():  # a cancel pressed during the last tile still saves nothing
        from ldm_studio.engine.errors import CancelledError

        raise CancelledError("upscale cancelled")
    return save_upscaled(result, image, job.source, upscaler.name, job.scale, job.folder)
