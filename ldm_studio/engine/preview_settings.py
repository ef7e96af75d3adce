"""How the live preview is drawn. Kept free of torch so the window can import it before torch loads."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PreviewMode(StrEnum):
    FAST = "fast"  # linear latent -> RGB projection, nearly free
    FULL = "full"  # a real VAE decode every N steps
    TINY = "tiny"  # a tiny autoencoder (TAESD family) every step: the real look at a fraction of the cost
    OFF = "off"
    # the app picks FULL, TINY or FAST from the model's measured decode cost (app.preview_auto);
    # the engine, given AUTO itself, shows FAST
    AUTO = "auto"


@dataclass(frozen=True)
class PreviewSettings:
    mode: PreviewMode = PreviewMode.FAST
    every: int = 1  # for FULL: decode every N steps (the last step is always shown)
    tiny_decoder: str = ""  # for TINY: the tiny autoencoder's path (without one, TINY shows FAST)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", PreviewMode(self.mode))  # accept "fast"/"full"/"off" strings

    def wants(self, step: int, total: int) -> bool:
        if self.mode is PreviewMode.OFF:
            return False
        if self.mode is PreviewMode.FULL:
            return step == total or step % max(1, self.every) == 0
        return True
