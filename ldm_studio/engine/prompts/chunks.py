"""Prompt text -> CLIP-sized chunks of token ids and weights, as A1111's ``sd_hijack_clip.tokenize_line``.

A chunk holds ``chunk_length`` prompt tokens (75 for CLIP) between a start and an end token, padded with
end tokens (the encoder swaps them for the model's pad token). When a chunk fills up, the text after its
last comma moves to the next chunk if that comma is within the last 20 tokens (A1111's
``comma_padding_backtrack``). ``BREAK`` closes the chunk. A textual-inversion name in the text is found by
its token ids and replaced by the embedding's vectors, which are never split across chunks.

One deliberate difference: when the comma rule moves tokens that include an embedding, A1111 leaves the
embedding's vectors at their old offset (they then overwrite padding in the previous chunk); we move them
with their tokens.

Only the tokenizer is needed here: counting tokens for the prompt box never touches a model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ldm_studio.engine.prompts.attention import parse_prompt_attention, parse_prompt_attention_lenient
from ldm_studio.engine.prompts.composable import split_composable
from ldm_studio.engine.prompts.errors import PromptError
from ldm_studio.engine.prompts.extra_networks import extract_extra_networks
from ldm_studio.engine.prompts.schedule import prompt_schedule

if TYPE_CHECKING:
    import torch

COMMA_PADDING_BACKTRACK = 20
CLIP_CHUNK_LENGTH = 75
PLACEHOLDER_TOKEN = 0  # what A1111 writes where an embedding's vectors go


@dataclass(frozen=True)
class Embedding:
    """A textual-inversion embedding: its trigger ``name`` and vectors per text encoder.

    ``vectors`` maps an encoder key to a ``[n, dim]`` tensor: ``"clip_l"`` and ``"clip_g"`` for SDXL's two
    encoders, ``"default"`` for a single-encoder model (SD 1.x / 2.x). Every entry has the same ``n``.
    """

    name: str
    vectors: Mapping[str, torch.Tensor]

    @property
    def num_vectors(self) -> int:
        return int(next(iter(self.vectors.values())).shape[0])

    def vectors_for(self, key: str) -> torch.Tensor | None:
        if key in self.vectors:
            return self.vectors[key]
        if "default" in self.vectors:
            return self.vectors["default"]
        if len(self.vectors) == 1:
            return next(iter(self.vectors.values()))
        return None


@dataclass(frozen=True)
class EmbeddingFix:
    """The vectors of ``embedding`` go at token position ``offset`` of the chunk (start token = 0)."""

    offset: int
    embedding: Embedding


@dataclass(frozen=True)
class PromptChunk:
    """``chunk_length + 2`` token ids and weights; ``used`` prompt tokens (the rest is padding)."""

    tokens: tuple[int, ...]
    weights: tuple[float, ...]
    fixes: tuple[EmbeddingFix, ...]
    used: int


@dataclass
class PromptTokenizer:
    """A tokenizer with the ids the chunker needs (start, end, pad, comma); build once per model."""

    tokenizer: Any
    chunk_length: int
    start_id: int
    end_id: int
    pad_id: int
    comma_id: int | None
    _embedding_ids: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, tokenizer: Any) -> PromptTokenizer:
        if isinstance(tokenizer, PromptTokenizer):
            return tokenizer
        start = _first_id(tokenizer, "bos_token_id", "cls_token_id")
        end = _first_id(tokenizer, "eos_token_id", "sep_token_id")
        pad = getattr(tokenizer, "pad_token_id", None)
        max_length = getattr(tokenizer, "model_max_length", None) or 0
        # A1111 hard-codes 75 for CLIP; other encoders (the bundled MiniLM) take what their tokenizer says
        chunk_length = max_length - 2 if 3 <= max_length <= 4096 else CLIP_CHUNK_LENGTH
        comma = tokenizer(",", add_special_tokens=False)["input_ids"]
        return cls(
            tokenizer,
            chunk_length,
            start,
            end,
            end if pad is None else pad,
            comma[0] if len(comma) == 1 else None,
        )

    def ids(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer(texts, truncation=False, add_special_tokens=False, verbose=False)["input_ids"]

    def embedding_ids(self, name: str) -> tuple[int, ...]:
        if name not in self._embedding_ids:
            self._embedding_ids[name] = tuple(self.ids([name])[0])
        return self._embedding_ids[name]

    def empty_chunk(self) -> PromptChunk:
        length = self.chunk_length + 2
        return PromptChunk((self.start_id,) + (self.end_id,) * (length - 1), (1.0,) * length, (), 0)

    def target_token_count(self, token_count: int) -> int:
        """The chunk multiple a count is shown against: 42 -> 75, 80 -> 150 (A1111's display)."""
        return math.ceil(max(token_count, 1) / self.chunk_length) * self.chunk_length


def _first_id(tokenizer: Any, *names: str) -> int:
    for name in names:
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    raise PromptError(f"The model's tokenizer has no {' or '.join(names)}: it cannot read prompts.")


def tokenize_prompt(
    tokenizer: Any, text: str, embeddings: Iterable[Embedding] = (), *, lenient: bool = False
) -> tuple[list[PromptChunk], int]:
    """The chunks for one prompt text (after scheduling) and its token count as A1111 counts it."""
    vocab = PromptTokenizer.of(tokenizer)
    pieces = parse_prompt_attention_lenient(text) if lenient else parse_prompt_attention(text)
    lookup = _embedding_lookup(vocab, embeddings)
    length = vocab.chunk_length
    chunks: list[PromptChunk] = []
    tokens: list[int] = []
    weights: list[float] = []
    fixes: list[EmbeddingFix] = []
    state = {"count": 0, "last_comma": -1}

    def close_chunk(is_last: bool = False) -> None:
        nonlocal tokens, weights, fixes
        state["count"] += len(tokens) if is_last else length
        used = len(tokens)
        padding = length - used
        chunks.append(
            PromptChunk(
                (vocab.start_id, *tokens, *([vocab.end_id] * padding), vocab.end_id),
                (1.0, *weights, *([1.0] * padding), 1.0),
                tuple(EmbeddingFix(fix.offset + 1, fix.embedding) for fix in fixes),
                used,
            )
        )
        tokens, weights, fixes = [], [], []
        state["last_comma"] = -1

    for piece, ids in zip(pieces, vocab.ids([piece.text for piece in pieces]), strict=True):
        if piece.is_break:
            close_chunk()
            continue
        position = 0
        while position < len(ids):
            token = ids[position]
            last_comma = state["last_comma"]
            if token == vocab.comma_id:
                state["last_comma"] = len(tokens)
            elif (
                len(tokens) == length
                and last_comma != -1
                and len(tokens) - last_comma <= COMMA_PADDING_BACKTRACK
            ):
                cut = last_comma + 1
                moved = (
                    tokens[cut:],
                    weights[cut:],
                    [EmbeddingFix(f.offset - cut, f.embedding) for f in fixes if f.offset >= cut],
                )
                tokens, weights, fixes = tokens[:cut], weights[:cut], [f for f in fixes if f.offset < cut]
                close_chunk()
                tokens, weights, fixes = list(moved[0]), list(moved[1]), moved[2]
            if len(tokens) == length:
                close_chunk()
            embedding, matched = _embedding_at(lookup, ids, position)
            if embedding is None:
                tokens.append(token)
                weights.append(piece.weight)
                position += 1
                continue
            size = embedding.num_vectors
            if len(tokens) + size > length:
                close_chunk()
            fixes.append(EmbeddingFix(len(tokens), embedding))
            tokens.extend([PLACEHOLDER_TOKEN] * size)
            weights.extend([piece.weight] * size)
            position += matched
    if tokens or not chunks:
        close_chunk(is_last=True)
    return chunks, state["count"]


def _embedding_lookup(
    vocab: PromptTokenizer, embeddings: Iterable[Embedding]
) -> dict[int, list[tuple[tuple[int, ...], Embedding]]]:
    lookup: dict[int, list[tuple[tuple[int, ...], Embedding]]] = {}
    for embedding in embeddings:
        if embedding.num_vectors > vocab.chunk_length:
            raise PromptError(
                f"The embedding '{embedding.name}' has {embedding.num_vectors} vectors; a prompt chunk holds "
                f"only {vocab.chunk_length} tokens."
            )
        ids = vocab.embedding_ids(embedding.name)
        if ids:
            lookup.setdefault(ids[0], []).append((ids, embedding))
    for candidates in lookup.values():
        candidates.sort(key=lambda candidate: len(candidate[0]), reverse=True)  # longest name wins
    return lookup


def _embedding_at(lookup, ids: list[int], position: int) -> tuple[Embedding | None, int]:
    for candidate_ids, embedding in lookup.get(ids[position], ()):
        if tuple(ids[position : position + len(candidate_ids)]) == candidate_ids:
            return embedding, len(candidate_ids)
    return None, 0


@dataclass(frozen=True)
class TokenCount:
    used: int
    limit: int

    def __str__(self) -> str:
        return f"{self.used}/{self.limit}"


def count_tokens(
    tokenizer: Any,
    prompt: str,
    embeddings: Iterable[Embedding] = (),
    *,
    steps: int = 20,
    negative: bool = False,
) -> TokenCount:
    """A1111's counter under the prompt box (``42/75``, ``80/150``): the longest text any step uses.

    Tags are removed, a positive prompt is split on AND, every step's text counted. Never raises: a
    half-typed prompt is counted as well as it can be.
    """
    vocab = PromptTokenizer.of(tokenizer)
    embeddings = tuple(embeddings)
    text = prompt if negative else extract_extra_networks(prompt)[0]
    try:
        parts = [text] if negative else [part.text for part in split_composable(text)]
    except PromptError:
        parts = [text]
    texts = {entry.text for part in parts for entry in prompt_schedule(part, max(steps, 1))}
    used = 0
    for candidate in texts:
        try:
            _, count = tokenize_prompt(vocab, candidate, embeddings, lenient=True)
        except PromptError:
            _, count = tokenize_prompt(vocab, candidate, (), lenient=True)
        used = max(used, count)
    return TokenCount(used, vocab.target_token_count(used))
