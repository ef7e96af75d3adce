"""Conditioning: prompt text -> the text embeddings the denoiser reads at each step.

The sampling loop asks ``PromptSchedule.at(step)`` for every step, so prompt editing (``[from:to:when]``)
and alternation (``[a|b]``) only have to produce a schedule with more than one entry. Today every
prompt is one entry for the whole run: ``schedule_prompt`` is where A1111 prompt syntax, textual
inversion embeddings, LoRA and clip skip join.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ldm_studio.engine.loader import LoadedModel

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


def schedule_prompt(model: LoadedModel, prompt: str, negative: str, guided: bool) -> PromptSchedule:
    """The per-step conditioning of a request's prompt: the one place the prompt parser plugs in.

    Today the whole prompt is one plain text for every step; a parser turns it into
    ``(until_step, embeddings)`` pairs (prompt editing, alternation) with weighted 75-token chunks.
    """
    with torch.autocast(model.placement.device.type, enabled=False):  # once per prompt: full precision
        return PromptSchedule.constant(encode_text(model, prompt, negative, guided))


def as_schedule(given: Conditioning | PromptSchedule) -> PromptSchedule:
    """A caller's ready conditioning (a latent walk's blend, say) as a schedule."""
    return given if isinstance(given, PromptSchedule) else PromptSchedule.constant(given)


@torch.no_grad()
def encode_text(model: LoadedModel, prompt: str, negative: str, guided: bool) -> Conditioning:
    """Plain text through the model's encoder(s), cached per model (the second click is free)."""
    key = (prompt, negative, guided)
    cached = model.embeddings.get(key)
    if cached is not None:
        return cached
    pipe, device = model.pipe, model.placement.device
    if model.denoiser.wants_pooled_text:
        positive, negative_embeds, pooled, negative_pooled = pipe.encode_prompt(
            prompt=prompt,
            device=device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=guided,
            negative_prompt=negative or None,
        )
        added = {"text_embeds": torch.cat([negative_pooled, pooled]) if guided else pooled}
    else:
        positive, negative_embeds = pipe.encode_prompt(prompt, device, 1, guided, negative or None)
        added = None
    embeds = torch.cat([negative_embeds, positive]) if guided else positive
    conditioning = Conditioning(embeds, added)
    if len(model.embeddings) >= EMBEDDING_CACHE_SIZE:
        model.embeddings.pop(next(iter(model.embeddings)))
    model.embeddings[key] = conditioning
    return conditioning


def for_batch(conditioning: Conditioning, batch: int, guided: bool) -> Conditioning:
    """Repeat one image's conditioning for every image of the batch, in the pipelines' order
    (all negatives, then all positives)."""
    halves = 2 if guided else 1

    def repeat(tensor: torch.Tensor) -> torch.Tensor:
        parts = tensor.chunk(halves)
        return torch.cat([part.repeat_interleave(batch, dim=0) for part in parts])

    added = None
    if conditioning.added is not None:
        added = {key: repeat(value) for key, value in conditioning.added.items()}
    return Conditioning(repeat(conditioning.embeds), added)
