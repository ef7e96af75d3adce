"""What the text encoders made of a prompt, and which of it holds at which step: the values every
family's conditioning stage returns (SD's in conditioning, SD 3 / FLUX's in flow_conditioning), kept
apart so the two stages do not import each other."""

from __future__ import annotations

from dataclasses import dataclass

import torch

EMBEDDING_CACHE_SIZE = 16


@dataclass
class Conditioning:
    """What the text encoder(s) made of one prompt (and its negative), for one image."""

    embeds: torch.Tensor  # [negative; positive] when guidance is on
    added: dict[str, torch.Tensor] | None  # SDXL's pooled text ("text_embeds"); the denoiser adds the rest


@dataclass(frozen=True)
class PromptSchedule:
    """Which conditioning holds at which step: ``(until_step, conditioning)`` pairs in step order.

    ``until_step`` is exclusive and counts real (0-based) steps; the last entry holds to the end
    whatever its bound, so a one-entry schedule is a constant prompt.
    """

    parts: tuple[tuple[int, Conditioning], ...]

    @classmethod
    def constant(cls, conditioning: Conditioning) -> PromptSchedule:
        return cls(((0, conditioning),))

    def at(self, step: int) -> Conditioning:
        """The conditioning for 0-based real step ``step`` (both model calls of a Heun step share it)."""
        for until_step, conditioning in self.parts[:-1]:
            if step < until_step:
                return conditioning
        return self.parts[-1][1]

    @property
    def first(self) -> Conditioning:
        return self.parts[0][1]


def row_at(bounds: list[int], step: int) -> int:
    """The schedule row in force at 0-based ``step``: the first whose exclusive end ``bounds`` is past
    it (the last one holds to the end)."""
    for row, bound in enumerate(bounds):
        if step < bound:
            return row
    return len(bounds) - 1
