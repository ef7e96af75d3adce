"""Conditioning for SD 3.x (CLIP-L + CLIP-G + T5) and FLUX.1 (CLIP-L pooled + T5).

The text goes through the pipeline's own ``encode_prompt``, so the embeddings are exactly those of a
bare diffusers pipeline. Prompts are read plainly: A1111 emphasis ``(word:1.2)`` is not applied to
these families yet (T5 has no 75-token chunks and Forge weights it differently), so the brackets are
passed to the tokenizers as text; prompt editing ``[a:b:when]`` and alternation are refused in a
sentence rather than read as words. One encoding per prompt pair is cached on the model.
"""

from __future__ import annotations

from typing import Any

import torch

from ldm_studio.engine.errors import GenerationError
from ldm_studio.engine.generation.text_conditioning import EMBEDDING_CACHE_SIZE, Conditioning, PromptSchedule
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.prompts import parse_prompt
from ldm_studio.engine.request import GenerationRequest

SD3_MAX_T5_TOKENS = 256  # StableDiffusion3Pipeline's default max_sequence_length
FLUX_MAX_T5_TOKENS = 512  # FluxPipeline's (schnell was trained with 256; 512 is what diffusers passes)


def check_plain_prompt(request: GenerationRequest) -> None:
    """Refuse what would silently mean something else here: prompt editing, alternation, AND."""
    for text in (request.prompt, request.negative_prompt):
        parsed = parse_prompt(text, request.steps)
        if parsed.unsupported:
            raise GenerationError(parsed.unsupported)
        schedules = [part.schedule for part in parsed.parts]
        if any(len(schedule) > 1 for schedule in schedules):
            raise GenerationError(
                "Prompt editing and alternation ([from:to:when], [a|b]) are not supported for SD 3 and "
                "FLUX models yet; write the prompt without them."
            )
        if parsed.networks:
            raise GenerationError(
                "LoRA tags (<lora:…>) are not supported for SD 3 and FLUX models yet; remove the tag."
            )


@torch.no_grad()
def encode_flow_text(model: LoadedModel, prompt: str, negative: str, guided: bool) -> Conditioning:
    """One image's conditioning: SD 3 [negative; positive] when guided, FLUX the prompt alone."""
    pipe = model.pipe
    device = model.placement.device
    if model.family == "flux":
        embeds, pooled, _text_ids = pipe.encode_prompt(
            prompt=prompt,
            prompt_2=None,
            device=device,
            num_images_per_prompt=1,
            max_sequence_length=FLUX_MAX_T5_TOKENS,
        )
        return Conditioning(embeds, {"pooled_projections": pooled})
    embeds, negative_embeds, pooled, negative_pooled = pipe.encode_prompt(
        prompt=prompt,
        prompt_2=None,
        prompt_3=None,
        device=device,
        num_images_per_prompt=1,
        do_classifier_free_guidance=guided,
        negative_prompt=negative,
        max_sequence_length=SD3_MAX_T5_TOKENS,
    )
    if guided:
        embeds = torch.cat([negative_embeds, embeds])
        pooled = torch.cat([negative_pooled, pooled])
    return Conditioning(embeds, {"pooled_projections": pooled})


def condition_flow(model: LoadedModel, request: GenerationRequest, guided: bool) -> PromptSchedule:
    """The (constant) schedule of a request's prompt for a flow-matching family."""
    check_plain_prompt(request)
    key: tuple[Any, ...] = ("flow", request.prompt, request.negative_prompt, guided)
    cached = model.embeddings.get(key)
    if cached is not None:
        return cached
    with torch.autocast(model.placement.device.type, enabled=False):  # once per prompt: full precision
        schedule = PromptSchedule.constant(
            encode_flow_text(model, request.prompt, request.negative_prompt, guided)
        )
    if len(model.embeddings) >= EMBEDDING_CACHE_SIZE:
        model.embeddings.pop(next(iter(model.embeddings)))
    model.embeddings[key] = schedule
    return schedule
