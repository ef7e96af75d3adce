"""Weighted prompt encoding as A1111's default "Original" emphasis, on plain transformers text encoders.

Each chunk is encoded on its own (A1111 ``process_tokens``); every token's hidden state is multiplied by
its weight and the result rescaled so that its mean is what it was before (``original_mean / new_mean``,
the mean over the whole batch as A1111 takes it); chunks are concatenated along the token axis and, for
SDXL, encoders along the feature axis. The pooled vector (SDXL) comes from the first chunk of the encoder
with a projection, before any weighting. Pure functions: no pipeline, no global state.

Clip skip uses A1111's numbering: 1 = the last layer, n > 1 = ``hidden_states[-n]`` then the final layer
norm (diffusers' ``clip_skip`` is n - 1). SDXL's encoders read the penultimate layer without the final
norm whatever clip skip says, as A1111 (its ``sdxl_clip_l_skip`` option off) and diffusers do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ldm_studio.engine.prompts.chunks import Embedding, PromptChunk, PromptTokenizer, tokenize_prompt
from ldm_studio.engine.prompts.errors import PromptError


@dataclass(frozen=True)
class TextEncoderPair:
    """One text encoder and its tokenizer; ``key`` picks an embedding's vectors (clip_l, clip_g, default).

    ``layer``: "clip_skip" (SD 1.x / 2.x: last layer or clip skip) or "penultimate" (SDXL's encoders).
    """

    tokenizer: Any
    text_encoder: Any
    key: str = "default"
    layer: Literal["clip_skip", "penultimate"] = "clip_skip"


@dataclass(frozen=True)
class EncodedPrompts:
    """``hidden``: [batch, tokens, features]; ``pooled``: [batch, projection] or None (no projection)."""

    hidden: torch.Tensor
    pooled: torch.Tensor | None


def sd_encoders(tokenizer: Any, text_encoder: Any) -> list[TextEncoderPair]:
    return [TextEncoderPair(tokenizer, text_encoder, "default", "clip_skip")]


def sdxl_encoders(
    tokenizer: Any, text_encoder: Any, tokenizer_2: Any, text_encoder_2: Any
) -> list[TextEncoderPair]:
    return [
        TextEncoderPair(tokenizer, text_encoder, "clip_l", "penultimate"),
        TextEncoderPair(tokenizer_2, text_encoder_2, "clip_g", "penultimate"),
    ]


@torch.no_grad()
def encode_prompts(
    encoders: Sequence[TextEncoderPair],
    texts: Sequence[str],
    *,
    clip_skip: int = 1,
    embeddings: Iterable[Embedding] = (),
) -> EncodedPrompts:
    """Encode scheduled prompt ``texts`` (extra-network tags and AND already handled) as one A1111 batch.

    Pass all the texts of one prompt's schedule together: A1111 encodes them as one batch, pads shorter
    ones with empty chunks so that they share a length, and takes the emphasis mean over that batch.
    Duplicate texts are encoded once but weigh in the mean as often as they appear, as in A1111.
    """
    if not texts:
        raise PromptError("There is no prompt text to encode.")
    if clip_skip < 1:
        raise PromptError(f"Clip skip counts from 1 (the last layer); {clip_skip} is not a layer.")
    embeddings = tuple(embeddings)
    counts = Counter(texts)
    unique = list(counts)
    vocabularies = [PromptTokenizer.of(pair.tokenizer) for pair in encoders]
    per_encoder = [[tokenize_prompt(vocab, text, embeddings)[0] for text in unique] for vocab in vocabularies]
    chunk_count = max(len(chunks) for chunk_lists in per_encoder for chunks in chunk_lists)
    multiplicity = torch.tensor([counts[text] for text in unique], dtype=torch.float64)
    hidden_parts, pooled = [], None
    for pair, vocab, chunk_lists in zip(encoders, vocabularies, per_encoder, strict=True):
        encoded_chunks = []
        for index in range(chunk_count):
            batch = [chunks[index] if index < len(chunks) else vocab.empty_chunk() for chunks in chunk_lists]
            hidden, chunk_pooled = _encode_chunk(pair, vocab, batch, clip_skip)
            encoded_chunks.append(_emphasise(hidden, batch, multiplicity))
            if index == 0 and chunk_pooled is not None:
                pooled = chunk_pooled
        hidden_parts.append(torch.cat(encoded_chunks, dim=1))
    hidden = torch.cat(hidden_parts, dim=-1)
    order = [unique.index(text) for text in texts]
    return EncodedPrompts(hidden[order], None if pooled is None else pooled[order])


def pad_to_same_length(
    first: torch.Tensor, second: torch.Tensor, empty: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lengthen the shorter of two conditionings with the empty prompt's encoding (A1111 ``pad_cond``).

    ``empty`` is ``encode_prompts(encoders, [""]).hidden``: one chunk, [1, chunk tokens, features].
    """
    chunk = empty.shape[1]
    difference = first.shape[1] - second.shape[1]
    if difference % chunk:
        raise PromptError("The two prompts' encodings are not whole chunks apart; they cannot be padded.")

    def padded(tensor: torch.Tensor, repeats: int) -> torch.Tensor:
        filler = empty.to(tensor).repeat(tensor.shape[0], repeats, 1)
        return torch.cat([tensor, filler], dim=1)

    if difference > 0:
        return first, padded(second, difference // chunk)
    if difference < 0:
        return padded(first, -difference // chunk), second
    return first, second


def _encode_chunk(
    pair: TextEncoderPair, vocab: PromptTokenizer, batch: list[PromptChunk], clip_skip: int
) -> tuple[torch.Tensor, torch.Tensor | None]:
    encoder = pair.text_encoder
    device = next(encoder.parameters()).device
    ids = torch.tensor([chunk.tokens for chunk in batch], dtype=torch.long)
    if vocab.pad_id != vocab.end_id:
        # SD 2.x / SDXL's second tokenizer pad with "!" (id 0) after the first end token, as A1111 does
        for row, chunk in enumerate(batch):
            first_end = chunk.tokens.index(vocab.end_id)
            ids[row, first_end + 1 :] = vocab.pad_id
    with _embeddings_inserted(encoder, pair.key, batch):
        output = encoder(input_ids=ids.to(device), output_hidden_states=True)
    if pair.layer == "penultimate":
        hidden = output.hidden_states[-2]
    elif clip_skip > 1:
        if clip_skip >= len(output.hidden_states):
            raise PromptError(f"Clip skip {clip_skip} is deeper than this text encoder's layers.")
        hidden = output.hidden_states[-clip_skip]
        norm = _final_layer_norm(encoder)
        if norm is not None:
            hidden = norm(hidden)
    else:
        hidden = output.last_hidden_state
    return hidden, getattr(output, "text_embeds", None)


def _final_layer_norm(encoder: Any) -> Any | None:
    for owner in (encoder, getattr(encoder, "text_model", None)):
        norm = getattr(owner, "final_layer_norm", None)
        if norm is not None:
            return norm
    return None


@contextmanager
def _embeddings_inserted(encoder: Any, key: str, batch: list[PromptChunk]):
    """Put textual-inversion vectors where their placeholder tokens are (a forward hook, removed after)."""
    if not any(chunk.fixes for chunk in batch):
        yield
        return
    token_embedding = encoder.get_input_embeddings()
    width = token_embedding.weight.shape[1]
    placed = []
    for row, chunk in enumerate(batch):
        for fix in chunk.fixes:
            vectors = fix.embedding.vectors_for(key)
            if vectors is None:
                raise PromptError(
                    f"The embedding '{fix.embedding.name}' has no vectors for the {key} text encoder."
                )
            if vectors.shape[-1] != width:
                raise PromptError(
                    f"The embedding '{fix.embedding.name}' is {vectors.shape[-1]} wide but this model's text "
                    f"encoder reads {width}: it was made for another model family."
                )
            placed.append((row, fix.offset, vectors))

    def replace(_module, _inputs, output):
        output = output.clone()
        for row, offset, vectors in placed:
            output[row, offset : offset + vectors.shape[0]] = vectors.to(output)
        return output

    handle = token_embedding.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


def _emphasise(hidden: torch.Tensor, batch: list[PromptChunk], multiplicity: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([chunk.weights for chunk in batch], dtype=hidden.dtype, device=hidden.device)
    return emphasise(hidden, weights, multiplicity)


def emphasise(
    hidden: torch.Tensor, weights: torch.Tensor, multiplicity: torch.Tensor | None = None
) -> torch.Tensor:
    """A1111's "Original" emphasis: each token's output times its weight (``weights``: batch x tokens),
    then rescaled so that the mean over the batch (rows counted ``multiplicity`` times) is what it was."""
    if bool((weights == 1.0).all()):
        return hidden  # A1111 multiplies by 1 and rescales by mean/mean = 1: the same numbers
    if multiplicity is None:
        multiplicity = torch.ones(hidden.shape[0])
    share = (multiplicity / multiplicity.sum()).to(hidden.device)
    original_mean = (hidden.double().mean(dim=(1, 2)) * share).sum()
    weighted = hidden * weights.unsqueeze(-1)
    new_mean = (weighted.double().mean(dim=(1, 2)) * share).sum()
    if not torch.isfinite(new_mean) or new_mean == 0:
        raise PromptError("The emphasis weights cancel the whole prompt out; use weights that are not zero.")
    return weighted * (original_mean / new_mean).to(hidden.dtype)
