"""One prompt text through an SD 3 or FLUX.1 pipeline's text encoders, with A1111 emphasis.

A text without emphasis goes through the pipeline's own ``encode_prompt``, so its numbers are a bare
diffusers pipeline's. A text with ``(word:1.2)``, ``[word]`` or ``BREAK`` is read as Forge reads it
for these families: the runs of text are tokenized one by one, each token keeps its run's weight,
the encoder's output is multiplied by the weights and rescaled so that its mean is what it was
(A1111's "Original" emphasis). T5 gets the weights (it is the text these models read token by
token); FLUX's CLIP-L gives only its pooled vector, which emphasis never changes in A1111, so it
reads the text without brackets. SD 3 also weights its two CLIP encoders' tokens. ``BREAK`` starts
a new T5 chunk (end token, padded to the usual length, chunks joined along the tokens) for FLUX;
SD 3's CLIP part has a fixed 77 tokens, so there a BREAK is refused in a sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ldm_studio.engine.errors import GenerationError
from ldm_studio.engine.prompts.attention import WeightedText, parse_prompt_attention
from ldm_studio.engine.prompts.encode import emphasise

SD3_MAX_T5_TOKENS = 256  # StableDiffusion3Pipeline's default max_sequence_length
FLUX_MAX_T5_TOKENS = 512  # FluxPipeline's (schnell was trained with 256; 512 is what diffusers passes)
SD3_BREAK = "BREAK is not supported for SD 3 models (their CLIP part is one 77-token chunk); remove it."


@dataclass(frozen=True)
class TextPieces:
    """A prompt as A1111 reads its emphasis: runs of text, their weights, and the BREAK-split chunks."""

    chunks: tuple[tuple[WeightedText, ...], ...]

    @classmethod
    def read(cls, text: str) -> TextPieces:
        chunks: list[list[WeightedText]] = [[]]
        for piece in parse_prompt_attention(text):
            if piece.is_break:
                chunks.append([])
            elif piece.text:
                chunks[-1].append(piece)
        return cls(tuple(tuple(chunk) for chunk in chunks))

    @property
    def plain(self) -> str:
        """The words without brackets, weights or BREAK (what the pooled CLIP vector reads)."""
        return " ".join("".join(piece.text for piece in chunk).strip() for chunk in self.chunks).strip()

    @property
    def emphasised(self) -> bool:
        return len(self.chunks) > 1 or any(piece.weight != 1.0 for chunk in self.chunks for piece in chunk)


def _device(module: Any) -> torch.device:
    from diffusers.utils.torch_utils import get_module_execution_device

    return get_module_execution_device(module)


def _weighted_ids(
    tokenizer: Any, pieces: tuple[WeightedText, ...], length: int, *, bos: bool
) -> tuple[list[int], list[float]]:
    """Token ids and weights of one chunk: [bos] + tokens (truncated) + end, padded to ``length``."""
    ids: list[int] = []
    weights: list[float] = []
    for piece in pieces:
        tokens = tokenizer(piece.text, add_special_tokens=False).input_ids
        ids += tokens
        weights += [piece.weight] * len(tokens)
    room = length - 1 - int(bos)
    ids, weights = ids[:room], weights[:room]
    if bos:
        ids, weights = [tokenizer.bos_token_id, *ids], [1.0, *weights]
    ids, weights = [*ids, tokenizer.eos_token_id], [*weights, 1.0]
    pad = length - len(ids)
    return ids + [tokenizer.pad_token_id] * pad, weights + [1.0] * pad


def _t5(pipe: Any, encoder: Any, tokenizer: Any, pieces: TextPieces, length: int) -> torch.Tensor:
    outputs = []
    for chunk in pieces.chunks:
        ids, weights = _weighted_ids(tokenizer, chunk, length, bos=False)
        hidden = encoder(torch.tensor([ids], device=_device(encoder)), output_hidden_states=False)[0]
        outputs.append(emphasise(hidden, torch.tensor([weights], dtype=hidden.dtype, device=hidden.device)))
    return torch.cat(outputs, dim=1)  # (in the compute dtype: an fp8-kept encoder's .dtype is fp8)


def _clip(encoder: Any, tokenizer: Any, pieces: TextPieces, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """SD 3's CLIP reading: the penultimate layer (emphasised) and the projected pooled vector."""
    ids, weights = _weighted_ids(tokenizer, pieces.chunks[0], length, bos=True)
    output = encoder(torch.tensor([ids], device=_device(encoder)), output_hidden_states=True)
    hidden = output.hidden_states[-2]
    return emphasise(hidden, torch.tensor([weights], dtype=hidden.dtype, device=hidden.device)), output[0]


def _unweighted(text: str, pieces: TextPieces) -> str:
    """The text a prompt without emphasis is encoded as: as typed, unless escapes (``\\(``) change it."""
    return text if pieces.plain == text.strip() else pieces.plain


def flux_text(pipe: Any, text: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(T5 embeds, CLIP-L pooled) for FLUX.1."""
    pieces = TextPieces.read(text)
    if not pieces.emphasised:
        embeds, pooled, _ = pipe.encode_prompt(
            prompt=_unweighted(text, pieces),
            prompt_2=None,
            device=device,
            num_images_per_prompt=1,
            max_sequence_length=FLUX_MAX_T5_TOKENS,
        )
        return embeds, pooled
    pooled = pipe._get_clip_prompt_embeds(prompt=pieces.plain, device=device, num_images_per_prompt=1)
    embeds = _t5(pipe, pipe.text_encoder_2, pipe.tokenizer_2, pieces, FLUX_MAX_T5_TOKENS)
    return embeds.to(device), pooled


def sd3_text(pipe: Any, text: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(CLIP-L + CLIP-G padded, then T5, along the tokens; the two pooled vectors) for SD 3."""
    pieces = TextPieces.read(text)
    if len(pieces.chunks) > 1:
        raise GenerationError(SD3_BREAK)
    if not pieces.emphasised:
        embeds, _, pooled, _ = pipe.encode_prompt(
            prompt=_unweighted(text, pieces),
            prompt_2=None,
            prompt_3=None,
            device=device,
            num_images_per_prompt=1,
            do_classifier_free_guidance=False,
            max_sequence_length=SD3_MAX_T5_TOKENS,
        )
        return embeds, pooled
    length = pipe.tokenizer_max_length  # 77: the pipeline's CLIP length
    hidden_l, pooled_l = _clip(pipe.text_encoder, pipe.tokenizer, pieces, length)
    hidden_g, pooled_g = _clip(pipe.text_encoder_2, pipe.tokenizer_2, pieces, length)
    clip = torch.cat([hidden_l, hidden_g], dim=-1).to(device)
    if pipe.text_encoder_3 is None:  # SD 3 without T5: zeros, as the pipeline puts there
        t5 = pipe._get_t5_prompt_embeds(prompt=pieces.plain, device=device, num_images_per_prompt=1)
    else:
        t5 = _t5(pipe, pipe.text_encoder_3, pipe.tokenizer_3, pieces, SD3_MAX_T5_TOKENS).to(device)
    clip = torch.nn.functional.pad(clip, (0, t5.shape[-1] - clip.shape[-1]))
    embeds = torch.cat([clip, t5.to(clip.dtype)], dim=-2)
    return embeds, torch.cat([pooled_l, pooled_g], dim=-1).to(device)
