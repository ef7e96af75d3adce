"""One prompt box, read the A1111 way: tags out, AND parts, and each part's text at every step."""

from __future__ import annotations

from dataclasses import dataclass

from ldm_studio.engine.prompts.composable import (
    ComposablePart,
    split_composable,
    unsupported_composable_message,
)
from ldm_studio.engine.prompts.extra_networks import ExtraNetworkTag, extract_extra_networks
from ldm_studio.engine.prompts.schedule import ScheduledPrompt, prompt_schedule


@dataclass(frozen=True)
class PromptPart:
    """One AND part: its composable weight and its schedule (texts still carry emphasis syntax)."""

    text: str
    weight: float
    schedule: tuple[ScheduledPrompt, ...]


@dataclass(frozen=True)
class ParsedPrompt:
    text: str
    clip_text: str
    networks: tuple[ExtraNetworkTag, ...]
    parts: tuple[PromptPart, ...]

    @property
    def unsupported(self) -> str | None:
        """The sentence to show when this prompt needs composable diffusion; None when it does not."""
        return unsupported_composable_message([ComposablePart(part.text, part.weight) for part in self.parts])

    @property
    def texts(self) -> list[str]:
        """Every distinct text some step needs, in first-use order: what the conditioning stage encodes."""
        seen: dict[str, None] = {}
        for part in self.parts:
            for entry in part.schedule:
                seen.setdefault(entry.text)
        return list(seen)


def parse_prompt(
    text: str,
    steps: int,
    *,
    negative: bool = False,
    hires_steps: int | None = None,
    old_scheduling: bool = False,
) -> ParsedPrompt:
    """Everything A1111 reads from a prompt box before encoding. A negative prompt keeps its tags as text
    and is never split on AND, as in A1111. Raises PromptError for a non-finite AND weight."""
    if negative:
        clip_text, networks = text, []
        parts = [ComposablePart(text, 1.0)]
    else:
        clip_text, networks = extract_extra_networks(text)
        parts = split_composable(clip_text)
    options = {"hires_steps": hires_steps, "old_scheduling": old_scheduling}
    return ParsedPrompt(
        text,
        clip_text,
        tuple(networks),
        tuple(
            PromptPart(part.text, part.weight, tuple(prompt_schedule(part.text, steps, **options)))
            for part in parts
        ),
    )
