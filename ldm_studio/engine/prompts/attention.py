"""A1111's emphasis syntax: ``(text)``, ``[text]``, ``(text:1.5)``, escapes and ``BREAK``.

This follows ``parse_prompt_attention`` in AUTOMATIC1111's ``modules/prompt_parser.py`` token by token,
including its quirks, because a pasted prompt must weigh the same here as there:

- an unclosed ``(`` or ``[`` applies to the rest of the prompt; a stray ``)`` or ``]`` is literal text;
- a lone backslash is dropped (``a\\b`` reads ``ab``); ``\\(`` ``\\)`` ``\\[`` ``\\]`` ``\\\\`` are literals;
- ``(a:1e3)`` is *not* a weight (A1111 only reads digits and dots): it is ``a:1e3`` at ×1.1;
- ``BREAK`` is a marker piece ``("BREAK", -1.0)``; inside brackets A1111 multiplies the marker like any
  other piece, so it stops being a break and becomes the word "BREAK" with a negative weight. We keep
  that: :func:`is_break` tells the two apart exactly as A1111's tokenizer does.

Where A1111 raises (a weight such as ``1.2.3``) or computes a weight that poisons the image (``inf`` from
a 400-digit number, ``0 × inf``), we raise :class:`PromptError` with a sentence instead. We do not clamp:
a silently changed weight would make a different picture from the one the user asked for.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ldm_studio.engine.prompts.errors import PromptError

ROUND_MULTIPLIER = 1.1
SQUARE_MULTIPLIER = 1 / 1.1
BREAK_TEXT = "BREAK"
BREAK_WEIGHT = -1.0
# Larger weights overflow a text encoder's float32 hidden states (|z| ~ 10..100) or fp16 ones long before
# anything useful happens; A1111 accepts them and draws noise or NaNs.
MAX_ABS_WEIGHT = 1e4

_TOKEN = re.compile(
    r"""
    \\\( | \\\) | \\\[ | \\\] | \\\\ | \\    # escapes, and a lone backslash
    | \( | \[                                # openers
    | :\s*([+-]?[.\d]+)\s*\)                 # an explicit weight closing a round bracket
    | \) | \]                                # closers
    | [^\\()\[\]:]+                          # text
    | :                                      # a colon that is just text
    """,
    re.X,
)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


@dataclass(frozen=True)
class WeightedText:
    """A run of prompt text that CLIP reads with one emphasis weight."""

    text: str
    weight: float

    @property
    def is_break(self) -> bool:
        return self.text == BREAK_TEXT and self.weight == BREAK_WEIGHT


@dataclass(frozen=True)
class EmphasisSpan:
    """Characters ``start:end`` of the prompt box read at ``weight`` (for highlighting)."""

    start: int
    end: int
    weight: float


def is_break(piece: WeightedText) -> bool:
    return piece.is_break


def parse_prompt_attention(text: str) -> list[WeightedText]:
    """The prompt as runs of text with their weights, adjacent equal weights merged (A1111's output).

    Raises :class:`PromptError` for a weight that is not a number or that is not finite.
    """
    pieces, _ = _parse(text, strict=True)
    return pieces


def parse_prompt_attention_lenient(text: str) -> list[WeightedText]:
    """Same as :func:`parse_prompt_attention` but never raises: for counting tokens while the user types.

    A weight that is not a number reads as 1.0; weights are not checked for being finite.
    """
    pieces, _ = _parse(text, strict=False)
    return pieces


def emphasis_spans(text: str) -> list[EmphasisSpan]:
    """Character ranges of ``text`` whose weight is not 1.0, for the prompt box's highlighting.

    The ranges cover the text characters only (not the brackets); escapes count as their two characters.
    Never raises.
    """
    _, spans = _parse(text, strict=False)
    merged: list[EmphasisSpan] = []
    for span in spans:
        if span.weight == 1.0 or span.start == span.end:
            continue
        if merged and merged[-1].end == span.start and merged[-1].weight == span.weight:
            merged[-1] = EmphasisSpan(merged[-1].start, span.end, span.weight)
        else:
            merged.append(span)
    return merged


def _parse(text: str, *, strict: bool) -> tuple[list[WeightedText], list[EmphasisSpan]]:
    # Each entry: [text, weight, start, end] (character positions in ``text`` for the highlighter).
    pieces: list[list] = []
    round_brackets: list[int] = []
    square_brackets: list[int] = []

    def multiply_from(start: int, multiplier: float) -> None:
        for piece in pieces[start:]:
            piece[1] *= multiplier

    for match in _TOKEN.finditer(text):
        token = match.group(0)
        weight = match.group(1)
        if token.startswith("\\"):
            pieces.append([token[1:], 1.0, match.start(), match.end()])
        elif token == "(":
            round_brackets.append(len(pieces))
        elif token == "[":
            square_brackets.append(len(pieces))
        elif weight is not None and round_brackets:
            multiply_from(round_brackets.pop(), _read_weight(weight, token, strict))
        elif token == ")" and round_brackets:
            multiply_from(round_brackets.pop(), ROUND_MULTIPLIER)
        elif token == "]" and square_brackets:
            multiply_from(square_brackets.pop(), SQUARE_MULTIPLIER)
        else:
            position = match.start()
            for index, part in enumerate(_split_keeping_positions(token, match.start())):
                part_text, part_start, part_end = part
                if index > 0:
                    pieces.append([BREAK_TEXT, BREAK_WEIGHT, position, part_start])
                pieces.append([part_text, 1.0, part_start, part_end])
                position = part_end

    # A1111 closes unclosed round brackets first, then square ones, each in opening order.
    for start in round_brackets:
        multiply_from(start, ROUND_MULTIPLIER)
    for start in square_brackets:
        multiply_from(start, SQUARE_MULTIPLIER)

    spans = [EmphasisSpan(start, end, weight) for _, weight, start, end in pieces]
    if not pieces:
        pieces = [["", 1.0, 0, 0]]
    merged: list[list] = [pieces[0][:2]]
    for piece_text, weight, _, _ in pieces[1:]:
        if merged[-1][1] == weight:
            merged[-1][0] += piece_text
        else:
            merged.append([piece_text, weight])
    result = [WeightedText(piece_text, weight) for piece_text, weight in merged]
    if strict:
        for piece in result:
            _check_finite(piece)
    return result, spans


def _split_keeping_positions(token_text: str, offset: int) -> list[tuple[str, int, int]]:
    """``re.split`` on BREAK, with each part's place in the prompt (``token_text`` starts at ``offset``)."""
    parts = []
    start = 0
    for match in _BREAK.finditer(token_text):
        parts.append((token_text[start : match.start()], offset + start, offset + match.start()))
        start = match.end()
    parts.append((token_text[start:], offset + start, offset + len(token_text)))
    return parts


def _read_weight(literal: str, token: str, strict: bool) -> float:
    try:
        return float(literal)
    except ValueError:
        if not strict:
            return 1.0
        raise PromptError(
            f"The emphasis weight in '{token}' is not a number: write it as (text:1.2)."
        ) from None


def _check_finite(piece: WeightedText) -> None:
    if piece.is_break:
        return
    if not math.isfinite(piece.weight) or abs(piece.weight) > MAX_ABS_WEIGHT:
        shown = piece.text.strip()[:40] or "(empty text)"
        raise PromptError(
            f"The emphasis on '{shown}' multiplies to {piece.weight:g}, which would ruin the image; "
            f"keep weights between -{MAX_ABS_WEIGHT:g} and {MAX_ABS_WEIGHT:g}."
        )
