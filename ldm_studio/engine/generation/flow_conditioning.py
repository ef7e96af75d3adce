"""Conditioning for SD 3.x (CLIP-L + CLIP-G + T5) and FLUX.1 (CLIP-L pooled + T5).

A prompt is read the A1111 way: prompt editing ``[from:to:when]`` and alternation ``[a|b]`` give a
schedule of texts over the steps (as for SD models), and each text goes through ``flow_text``: the
pipeline's own ``encode_prompt`` when it has no emphasis (the numbers of a bare diffusers pipeline),
Forge's reading of ``(word:1.2)`` and ``BREAK`` when it has. ``AND`` (composable diffusion) is
refused in a sentence. One schedule per prompt pair and step count is cached on the model.
"""

from __future__ import annotations

from typing import Any

import torch

from ldm_studio.engine.errors import GenerationError
from ldm_studio.engine.generation.flow_text import flux_text, sd3_text
from ldm_studio.engine.generation.text_conditioning import (
    EMBEDDING_CACHE_SIZE,
    Conditioning,
    PromptSchedule,
    row_at,
)
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.prompts import ParsedPrompt, parse_prompt
from ldm_studio.engine.request import GenerationRequest


def check_plain_prompt(request: GenerationRequest) -> None:
    """Refuse what would silently mean something else here: AND (composable diffusion) in the prompt.
    A negative prompt is never split at AND (A1111): there it is text."""
    parsed = parse_prompt(request.prompt, request.steps)
    if parsed.unsupported:
        raise GenerationError(parsed.unsupported)


@torch.no_grad()
def encode_flow_text(model: LoadedModel, prompt: str, negative: str, guided: bool) -> Conditioning:
    """One image's conditioning: SD 3 [negative; positive] when guided, FLUX the prompt alone."""
    pipe = model.pipe
    device = model.placement.device
    if model.family == "flux":
        embeds, pooled = flux_text(pipe, prompt, device)
        return Conditioning(embeds, {"pooled_projections": pooled})
    embeds, pooled = sd3_text(pipe, prompt, device)
    if guided:
        negative_embeds, negative_pooled = sd3_text(pipe, negative, device)
        embeds = torch.cat([negative_embeds, embeds])
        pooled = torch.cat([negative_pooled, pooled])
    return Conditioning(embeds, {"pooled_projections": pooled})


def _schedule(parsed: ParsedPrompt) -> tuple[list[int], list[str]]:
    """A prompt's schedule as exclusive 0-based end steps and their texts (A1111 keeps an entry
    while the step <= its end, as the SD path reads it)."""
    entries = parsed.parts[0].schedule
    return [entry.until_step + 1 for entry in entries], [entry.text for entry in entries]


def flow_schedule(model: LoadedModel, request: GenerationRequest, guided: bool) -> PromptSchedule:
    """Each span of steps with its own text pair, encoded once per distinct pair."""
    bounds_pos, texts_pos = _schedule(parse_prompt(request.prompt, request.steps))
    bounds_neg, texts_neg = _schedule(parse_prompt(request.negative_prompt, request.steps, negative=True))
    encoded: dict[tuple[str, str], Conditioning] = {}
    parts = []
    for end in sorted(set(bounds_pos) | (set(bounds_neg) if guided else set())):
        step = end - 1
        pair = (texts_pos[row_at(bounds_pos, step)], texts_neg[row_at(bounds_neg, step)] if guided else "")
        if pair not in encoded:
            encoded[pair] = encode_flow_text(model, pair[0], pair[1], guided)
        parts.append((end, encoded[pair]))
    return PromptSchedule(tuple(parts))


def condition_flow(model: LoadedModel, request: GenerationRequest, guided: bool) -> PromptSchedule:
    """The schedule of a request's prompt for a flow-matching family."""
    check_plain_prompt(request)
    key: tuple[Any, ...] = ("flow", request.prompt, request.negative_prompt, guided, request.steps)
    cached = model.embeddings.get(key)
    if cached is not None:
        return cached
    with torch.autocast(model.placement.device.type, enabled=False):  # once per prompt: full precision
        schedule = flow_schedule(model, request, guided)
    if len(model.embeddings) >= EMBEDDING_CACHE_SIZE:
        model.embeddings.pop(next(iter(model.embeddings)))
    model.embeddings[key] = schedule
    return schedule
