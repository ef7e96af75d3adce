"""How the live preview is drawn. Kept free of torch so the window can import it before torch loads."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PreviewMode(StrEnum):
    FAST = "fast"  # linear latent -> RGB projection, nearly free
    FULL = "full"  # a real VAE decode every N steps
    OFF = "off"


@dataclass(frozen=True)
class PreviewSettings:
    mode: PreviewMode = PreviewMode.FAST
    every: int = 1  # for FULL: decode every N steps (the last step is always shown)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", PreviewMode(self.mode))  # accept "fast"/"full"/"off" strings

    def wants(self, step: int, total: int) -> bool:
        if self.mode is PreviewMode.OFF:
            return False
        if self.mode is PreviewMode.FULL:
            return step == total or step % max(1, self.every) == 0
        return True
