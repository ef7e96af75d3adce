"""Hires fix as a user asks for it (A1111's "Hires. fix"): a value on the request, no torch here.

A1111's arithmetic is kept exactly, so that an image's ``Hires upscale: 2, Hires steps: 10, Hires
upscaler: Latent, Denoising strength: 0.5`` reproduces here:

- the target is ``int(width * scale)`` x ``int(height * scale)``, or ``Hires resize: WxH`` (one side
  0 keeps the aspect; both given: cover the box, then crop the overflow in latent space, centred);
- the latents are ``target // 8`` (a pixel upscaler enlarges to the exact target, which the VAE's
  stride then floors the same way), so the final image is a multiple of 8;
- the second pass runs exactly ``steps`` steps (0: as many as the first pass) out of a schedule of
  ``int(steps / min(strength, 0.999))``, i.e. the last ``steps`` of it (``setup_img2img_steps``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ldm_studio.engine.samplers import DEFAULT_SCHEDULE, schedules_for

# A1111's modules/shared_items: name -> (torch interpolate mode, antialias)
LATENT_MODES: dict[str, tuple[str, bool]] = {
    "Latent": ("bilinear", False),
    "Latent (antialiased)": ("bilinear", True),
    "Latent (bicubic)": ("bicubic", False),
    "Latent (bicubic antialiased)": ("bicubic", True),
    "Latent (nearest)": ("nearest", False),
    "Latent (nearest-exact)": ("nearest-exact", False),
}
PIXEL_RESIZES = ("Lanczos", "Nearest")  # A1111's built-in pixel upscalers (no model file)
DEFAULT_UPSCALER = "Latent"
MAX_SCALE = 8.0
MAX_SIDE = 8192
MAX_STEPS = 500
LATENT_FACTOR = 8  # A1111's opt_f: the size arithmetic it records is in these units


@dataclass(frozen=True)
class HiresFix:
    """A second, partial denoising pass at a larger size after the first (A1111's hires fix)."""

    scale: float = 2.0  # "Hires upscale"; used when ``resize`` is None
    resize: tuple[int, int] | None = None  # "Hires resize: WxH"; 0 on one side keeps the aspect
    steps: int = 0  # "Hires steps": 0 = as many as the first pass
    strength: float = 0.7  # "Denoising strength" of the second pass
    upscaler: str = DEFAULT_UPSCALER  # a latent mode, Lanczos, Nearest, or an upscaler file's name
    sampler: str = ""  # "Hires sampler": "" = the first pass's
    prompt: str = ""  # "Hires prompt": "" = the first pass's
    negative_prompt: str = ""  # "Hires negative prompt": "" = the first pass's
    guidance: float | None = None  # "Hires CFG Scale" (Forge's key): None = the first pass's

    def __post_init__(self) -> None:
        if self.resize is not None:
            object.__setattr__(self, "resize", tuple(int(side) for side in self.resize))
            if len(self.resize) != 2 or min(self.resize) < 0 or max(self.resize) > MAX_SIDE:
                raise ValueError(
                    f"the hires size must be two sides of 0..{MAX_SIDE} pixels, got {self.resize}"
                )
            if max(self.resize) < LATENT_FACTOR:
                raise ValueError("the hires size needs at least one side of 8 pixels or more")
        elif not (math.isfinite(self.scale) and 1.0 <= self.scale <= MAX_SCALE):
            raise ValueError(f"the hires upscale must be between 1 and {MAX_SCALE:g}, got {self.scale}")
        if not 0 <= self.steps <= MAX_STEPS:
            raise ValueError(f"hires steps must be between 0 and {MAX_STEPS}, got {self.steps}")
        if not (math.isfinite(self.strength) and 0.0 <= self.strength <= 1.0):
            raise ValueError(f"the hires denoising strength must be between 0 and 1, got {self.strength}")
        if not self.upscaler.strip():
            raise ValueError("name a hires upscaler (Latent, Lanczos, or an upscaler file)")
        canonical = {name.lower(): name for name in (*LATENT_MODES, *PIXEL_RESIZES)}
        # "latent (nearest-exact)" typed on a command line is A1111's "Latent (nearest-exact)"
        object.__setattr__(self, "upscaler", canonical.get(self.upscaler.strip().lower(), self.upscaler))
        if self.guidance is not None and not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise ValueError(f"the hires CFG scale must be a positive number, got {self.guidance}")

    # ---- A1111's arithmetic ----------------------------------------------------------------------
    @property
    def latent_mode(self) -> tuple[str, bool] | None:
        """(interpolate mode, antialias) for a latent upscaler, None for a pixel one."""
        return LATENT_MODES.get(self.upscaler)

    def upscale_to(self, width: int, height: int) -> tuple[int, int]:
        """A1111's ``hr_upscale_to_x/y``: the size the first result is enlarged to (before cropping)."""
        if self.resize is None:
            return int(width * self.scale), int(height * self.scale)
        to_w, to_h = self.resize
        if to_h == 0:
            return to_w, to_w * height // width
        if to_w == 0:
            return to_h * width // height, to_h
        if width / height < to_w / to_h:
            return to_w, to_w * height // width
        return to_h * width // height, to_h

    def truncation(self, width: int, height: int) -> tuple[int, int]:
        """A1111's ``truncate_x/y``: latent columns and rows cropped (centred) to fit ``resize``."""
        if self.resize is None or 0 in self.resize:
            return 0, 0
        up_w, up_h = self.upscale_to(width, height)
        return (up_w - self.resize[0]) // LATENT_FACTOR, (up_h - self.resize[1]) // LATENT_FACTOR

    def latent_size(self, width: int, height: int, factor: int = LATENT_FACTOR) -> tuple[int, int]:
        """(latent width, latent height) of the second pass for a VAE that shrinks by ``factor``."""
        # A1111's sizes in its units of 8 pixels, whatever this VAE's factor: the same final image size
        up_w, up_h = self.upscale_to(width, height)
        cut_w, cut_h = self.truncation(width, height)
        units_w, units_h = up_w // LATENT_FACTOR - cut_w, up_h // LATENT_FACTOR - cut_h
        return units_w * LATENT_FACTOR // factor, units_h * LATENT_FACTOR // factor

    def final_size(self, width: int, height: int, factor: int = LATENT_FACTOR) -> tuple[int, int]:
        """The finished image's size in pixels."""
        latent_w, latent_h = self.latent_size(width, height, factor)
        return latent_w * factor, latent_h * factor

    def pass_schedule(self, first_sampler: str, first_schedule: str) -> str:
        """The schedule type the second pass runs with: the first pass's, or "Automatic" when the
        hires sampler cannot take it (A1111 falls back rather than refusing the image)."""
        if not self.sampler or self.sampler == first_sampler:
            return first_schedule
        return first_schedule if first_schedule in schedules_for(self.sampler) else DEFAULT_SCHEDULE

    def pass_steps(self, first_steps: int) -> int:
        """How many steps the second pass runs (what the progress and the timeline count)."""
        return self.steps or first_steps

    def schedule_steps(self, first_steps: int) -> int:
        """The length of the schedule whose last ``pass_steps`` the second pass runs."""
        if self.strength <= 0:
            return 0
        return int(self.pass_steps(first_steps) / min(self.strength, 0.999))

    # ---- storage --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["resize"] = list(self.resize) if self.resize is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HiresFix:
        """Build from a dict (our JSON), ignoring keys this version does not know."""
        known = set(cls.__dataclass_fields__)
        values = {key: value for key, value in data.items() if key in known}
        if values.get("resize") is not None:
            values["resize"] = tuple(values["resize"])
        return cls(**values)


def as_hires(value: HiresFix | dict[str, Any] | None) -> HiresFix | None:
    """The request's ``hires`` field from what a caller or a JSON file handed over."""
    if value is None or isinstance(value, HiresFix):
        return value
    if isinstance(value, dict):
        return HiresFix.from_dict(value)
    raise ValueError(f"hires must be a HiresFix, a dict or None, not {type(value).__name__}")


def check_hires(hires: HiresFix | None, init_image: str) -> None:
    """A1111 has hires fix in txt2img only; an img2img request says so instead of guessing."""
    if hires is not None and init_image:
        raise ValueError("hires fix works from text to image only (as in A1111); clear the source image")


def total_steps(steps: int, hires: HiresFix | None) -> int:
    """Steps of a whole generation as the progress counts them: first pass + second pass."""
    return steps + (hires.pass_steps(steps) if hires is not None and hires.strength > 0 else 0)


def second_pass_start(steps: int, hires: HiresFix | None) -> int | None:
    """The 1-based step where the second pass begins (the timeline marks it), None without one."""
    if hires is None or hires.strength <= 0:
        return None
    return steps + 1


def upscaler_choices(files: Iterable[Path] = ()) -> list[str]:
    """What the hires upscaler menu offers: A1111's latent modes, Lanczos, Nearest, then the files."""
    names = [*LATENT_MODES, *PIXEL_RESIZES]
    for path in files:
        if Path(path).stem not in names:
            names.append(Path(path).stem)
    return names


def library_upscaler_files() -> list[Path]:
    """Upscaler files in the library folders (names only: nothing is opened, no torch)."""
    from ldm_studio.engine.catalog import UPSCALER, find_models, library_folders

    found: dict[str, Path] = {}
    for folder in library_folders(UPSCALER):
        for path in find_models(Path(folder), UPSCALER):
            found.setdefault(path.stem.lower(), path)
    return sorted(found.values(), key=lambda path: path.stem.lower())
