"""Conditioning: prompt text -> the text embeddings the denoiser reads at each step.

The sampling loop asks ``PromptSchedule.at(step)`` for every step, so prompt editing (``[from:to:when]``)
and alternation (``[a|b]``) are schedules with more than one entry. ``schedule_prompt`` reads the text
with the A1111 toolkit (``engine.prompts``): emphasis, 75-token chunks, embeddings and clip skip.
"""

from __future__ import annotations

import torch

from ldm_studio.engine.generation.networks import PreparedNetworks, prepare_flow_networks, prepare_networks

# re-exported: the stages import them from here
from ldm_studio.engine.generation.text_conditioning import (  # noqa: E402, F401
    EMBEDDING_CACHE_SIZE,
    Conditioning,
    PromptSchedule,
    row_at,
)
from ldm_studio.engine.loader import LoadedModel
from ldm_studio.engine.networks import NetworkLibrary
from ldm_studio.engine.prompts import Embedding, ParsedPrompt, UnsupportedPrompt, parse_prompt
from ldm_studio.engine.prompts.encode import (
    EncodedPrompts,
    TextEncoderPair,
    encode_prompts,
    pad_to_same_length,
    sd_encoders,
    sdxl_encoders,
)
from ldm_studio.engine.request import GenerationRequest


def schedule_prompt(
    model: LoadedModel,
    request: GenerationRequest,
    guided: bool,
    networks: PreparedNetworks | None = None,
) -> PromptSchedule:
    """The per-step conditioning of a request's prompt, read the A1111 way: emphasis, 75-token
    chunks, ``BREAK``, prompt editing and alternation, embeddings, clip skip (tags were applied by
    the networks stage). Refuses ``AND`` (composable diffusion) in a sentence."""
    positive = parse_prompt(request.prompt, request.steps)
    if positive.unsupported:
        raise UnsupportedPrompt(positive.unsupported)
    negative = parse_prompt(request.negative_prompt, request.steps, negative=True)
    networks = networks or PreparedNetworks()
    if networks.text_encoders_changed:
        model.embeddings.clear()  # encodings made with other text-encoder weights
    clip_skip = effective_clip_skip(model, request.clip_skip)
    key = (request.prompt, request.negative_prompt, request.steps, guided, clip_skip, networks.signature)
    cached = model.embeddings.get(key)
    if cached is not None:
        return cached
    with torch.autocast(model.placement.device.type, enabled=False):  # once per prompt: full precision
        schedule = _encode_schedule(model, positive, negative, guided, clip_skip, networks.embeddings)
    if len(model.embeddings) >= EMBEDDING_CACHE_SIZE:
        model.embeddings.pop(next(iter(model.embeddings)))
    model.embeddings[key] = schedule
    return schedule


def effective_clip_skip(model: LoadedModel, clip_skip: int) -> int:
    """SD 2.x checkpoints already stop at the penultimate layer and A1111 ignores clip skip there."""
    return 1 if model.family == "sd2" else clip_skip


def text_encoders(model: LoadedModel) -> list[TextEncoderPair]:
    pipe = model.pipe
    if getattr(pipe, "text_encoder_2", None) is not None:
        return sdxl_encoders(pipe.tokenizer, pipe.text_encoder, pipe.tokenizer_2, pipe.text_encoder_2)
    return sd_encoders(pipe.tokenizer, pipe.text_encoder)


def _zero_empty_negative(model: LoadedModel, text: str) -> bool:
    """SDXL draws an empty negative prompt as zeros, not as the encoding of "" (diffusers' and
    A1111's rule for SDXL alike)."""
    return (
        text == ""
        and model.denoiser.wants_pooled_text
        and bool(model.pipe.config.get("force_zeros_for_empty_prompt", True))
    )


@torch.no_grad()
def _encode_schedule(
    model: LoadedModel,
    positive: ParsedPrompt,
    negative: ParsedPrompt,
    guided: bool,
    clip_skip: int,
    embeddings: tuple[Embedding, ...],
) -> PromptSchedule:
    encoders = text_encoders(model)
    device = model.placement.device
    pooled_wanted = model.denoiser.wants_pooled_text

    def encode(parsed: ParsedPrompt) -> tuple[list[int], EncodedPrompts]:
        schedule = parsed.parts[0].schedule
        texts = [entry.text for entry in schedule]
        # A1111 counts steps from 0 and keeps an entry while step <= its end: our bounds are exclusive
        return [entry.until_step + 1 for entry in schedule], encode_prompts(
            encoders, texts, clip_skip=clip_skip, embeddings=embeddings
        )

    bounds_pos, pos = encode(positive)
    if guided:
        bounds_neg, neg = encode(negative)
        if _zero_empty_negative(model, negative.text):
            neg = EncodedPrompts(
                torch.zeros_like(neg.hidden), None if neg.pooled is None else torch.zeros_like(neg.pooled)
            )
        empty = encode_prompts(encoders, [""], clip_skip=clip_skip).hidden
        pos_hidden, neg_hidden = pad_to_same_length(pos.hidden, neg.hidden, empty)
    else:
        bounds_neg, neg, pos_hidden, neg_hidden = [], None, pos.hidden, None
    parts = []
    for bound in sorted(set(bounds_pos) | set(bounds_neg)):
        step = bound - 1
        row = row_at(bounds_pos, step)
        embeds = pos_hidden[row : row + 1]
        pooled = pos.pooled[row : row + 1] if pos.pooled is not None else None
        if neg is not None:
            neg_row = row_at(bounds_neg, step)
            embeds = torch.cat([neg_hidden[neg_row : neg_row + 1], embeds])
            if pooled is not None and neg.pooled is not None:
                pooled = torch.cat([neg.pooled[neg_row : neg_row + 1], pooled])
        added = {"text_embeds": pooled.to(device)} if pooled_wanted and pooled is not None else None
        parts.append((bound, Conditioning(embeds.to(device), added)))
    return PromptSchedule(tuple(parts))


def as_schedule(given: Conditioning | PromptSchedule) -> PromptSchedule:
    """A caller's ready conditioning (a latent walk's blend, say) as a schedule."""
    return given if isinstance(given, PromptSchedule) else PromptSchedule.constant(given)


def condition(
    model: LoadedModel, request: GenerationRequest, guided: bool, library: NetworkLibrary | None = None
) -> tuple[PromptSchedule, PreparedNetworks]:
    """The networks stage, then the prompt's schedule: LoRA weights first, as they change the text
    encoder that the schedule is encoded with."""
    if model.family in ("sd3", "flux"):  # transformer families: their own encoders (flow_conditioning)
        from ldm_studio.engine.generation.flow_conditioning import condition_flow

        networks = prepare_flow_networks(model, request, library)
        return condition_flow(model, request, guided), networks
    positive = parse_prompt(request.prompt, request.steps)
    negative = parse_prompt(request.negative_prompt, request.steps, negative=True)
    texts = [*positive.texts, *negative.texts]
    networks = prepare_networks(model, request, positive.networks, texts, library)
    return schedule_prompt(model, request, guided, networks), networks


def encode_text(model: LoadedModel, prompt: str, negative: str, guided: bool) -> Conditioning:
    """One prompt's conditioning at its first step, its LoRA tags applied (a latent walk blends two)."""
    return condition(model, GenerationRequest(prompt, negative), guided)[0].first


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
