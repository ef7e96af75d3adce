"""Which live preview a model gets by default, from what its decode costs next to a step.

A pure function over measured seconds (no torch), so the rule is tested with numbers and the window
can say why: a Full decode every step where it costs under ~15 % of a step (the bundled small model:
8.7 ms on a 20 ms step is 44 %, so not there; an SD 1.5 UNet step on a GPU usually is), the tiny
decoder where one is installed for the model's family, the Fast projection otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from ldm_studio.engine.preview_settings import PreviewMode

FULL_SHARE = 0.15  # a Full decode every step may add this much to a step


@dataclass(frozen=True)
class PreviewCost:
    """Seconds measured once per model and device: one VAE decode, one denoising step."""

    decode_seconds: float
    step_seconds: float

    @property
    def share(self) -> float:
        return self.decode_seconds / self.step_seconds if self.step_seconds > 0 else float("inf")


@dataclass(frozen=True)
class PreviewChoice:
    mode: PreviewMode
    reason: str  # what the panel shows: "Full preview: decode is 9% of a step"


def _percent(share: float) -> str:
    return "more than 10× a step" if share > 10 else f"{share:.0%} of a step"


def choose_preview(cost: PreviewCost | None, tiny_decoder: str = "", family: str = "") -> PreviewChoice:
    """The default preview mode for a model whose decode costs ``cost`` (None: not measured yet)."""
    if cost is not None and cost.share < FULL_SHARE:
        return PreviewChoice(PreviewMode.FULL, f"Full preview: decode is {_percent(cost.share)}")
    measured = f"decode is {_percent(cost.share)}" if cost is not None else "decode cost not measured yet"
    if tiny_decoder:
        return PreviewChoice(PreviewMode.TINY, f"Tiny decoder preview: full {measured}")
    missing = f"no tiny decoder for {family}" if family else "no tiny decoder"
    return PreviewChoice(PreviewMode.FAST, f"Fast preview: full {measured}, {missing}")


def cost_from_run(
    step_elapsed: list[float], finished_elapsed: float, full_previews: int = 0
) -> PreviewCost | None:
    """The decode and step cost of one generation, from what its events already say.

    ``step_elapsed``: each Step's seconds since the start; the final decode is what follows the last
    step. ``full_previews``: how many steps decoded a Full preview (their cost is taken off the steps).
    None when the run is too short to tell (fewer than 2 steps).
    """
    if len(step_elapsed) < 2 or finished_elapsed <= step_elapsed[-1]:
        return None
    decode_seconds = finished_elapsed - step_elapsed[-1]
    span = step_elapsed[-1] - step_elapsed[0]
    steps = len(step_elapsed) - 1
    previews = min(full_previews, steps) * decode_seconds
    step_seconds = max(span - previews, 0.0) / steps
    if step_seconds <= 0:
        return None
    return PreviewCost(decode_seconds, step_seconds)
