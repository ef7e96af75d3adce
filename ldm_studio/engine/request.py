"""What a user asks for: everything needed to reproduce an image. No torch import here."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass, field
from typing import Any

from ldm_studio.engine.hires_request import HiresFix, as_hires, check_hires
from ldm_studio.engine.outpaint import Outpaint, as_outpaint
from ldm_studio.engine.samplers import SCHEDULES

MAX_SEED = 2**32 - 1
MAX_CLIP_SKIP = 12  # A1111's slider range


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    seed: int | None = None  # None: draw one (see ``with_seed``)
    steps: int = 20
    guidance: float = 7.0
    width: int | None = None  # None: the model's native size
    height: int | None = None
    sampler: str = "Euler a"
    batch_size: int = 1
    model: str = ""  # path or name of the model, recorded for reproduction
    # Image to image / inpainting (issue 6); empty means text to image.
    init_image: str = ""
    strength: float = 1.0
    mask: str = ""
    # A1111's numbering: 1 = the text encoder's last layer, 2 = the penultimate one (+ final layer norm).
    clip_skip: int = 1
    extras: dict[str, Any] = field(default_factory=dict)
    # A1111's "Schedule type" beside the sampler (Karras, SGM Uniform, ...); see engine.samplers
    schedule: str = "Automatic"
    hires: HiresFix | None = None  # A1111's hires fix: a second pass at a larger size (hires_request.py)
    tiling: bool = False  # A1111's "Tiling": seamless, circular padding (engine.generation.tiling)
    decoder: str = ""  # "" = the model's VAE; a tiny autoencoder's path: a draft decode (tiny_decoding)
    # Extend init_image's canvas and inpaint the new area; width x height is the extended size (outpaint.py)
    outpaint: Outpaint | None = None

    def __post_init__(self) -> None:
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {self.seed}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and (value < 8 or value % 8):
                raise ValueError(f"{name} must be a positive multiple of 8, got {value}")
        if not 1 <= self.clip_skip <= MAX_CLIP_SKIP:
            raise ValueError(f"clip skip must be between 1 and {MAX_CLIP_SKIP}, got {self.clip_skip}")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"strength must be between 0 and 1, got {self.strength}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule type {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        object.__setattr__(self, "hires", as_hires(self.hires))  # a dict from JSON becomes the value
        check_hires(self.hires, self.init_image)
        object.__setattr__(self, "outpaint", as_outpaint(self.outpaint))
        if self.outpaint is not None and not self.init_image:
            raise ValueError("outpainting needs a source image to extend")
        if self.outpaint is not None and self.width and self.height:
            self.outpaint.inner((self.width, self.height))  # room left for the source, or a sentence

    def with_seed(self, rng: random.Random | None = None) -> GenerationRequest:
        """This request with a concrete seed: a fresh random one when none is set."""
        if self.seed is not None:
            return self
        return dataclasses.replace(self, seed=(rng or random.SystemRandom()).randint(0, MAX_SEED))

    def seed_for(self, index: int) -> int:
        """Image ``index`` of a batch uses seed + index (wrapping at 2**32)."""
        if self.seed is None:
            raise ValueError("request has no seed yet")
        return (self.seed + index) % (MAX_SEED + 1)

    def replace(self, **changes: Any) -> GenerationRequest:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationRequest:
        """Build from a dict, ignoring keys this version does not know (newer files)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})
