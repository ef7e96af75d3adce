"""Composable diffusion: A1111 splits a positive prompt on the word ``AND``; each part may end in ``:weight``.

``get_multicond_prompt_list`` in A1111: the split is on ``\\bAND\\b`` (case-sensitive, a whole word), and a
trailing ``:number`` of each part is its weight, even with a single part ("a cat:1.2" is the text
"a cat" guided 1.2 times as strongly). The negative prompt is never split.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ldm_studio.engine.prompts.errors import PromptError, UnsupportedPrompt

_AND = re.compile(r"\bAND\b")
_WEIGHT = re.compile(r"^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$")


@dataclass(frozen=True)
class ComposablePart:
    text: str
    weight: float


def split_composable(prompt: str) -> list[ComposablePart]:
    """The parts of a positive prompt with their weights; raises PromptError for a non-finite weight."""
    parts = []
    for piece in _AND.split(prompt):
        match = _WEIGHT.search(piece)
        text, literal = match.groups() if match is not None else (piece, None)
        weight = float(literal) if literal is not None else 1.0
        if not math.isfinite(weight):
            raise PromptError(f"The weight after '{text.strip()[:40]}' is too large; write a finite number.")
        parts.append(ComposablePart(text, weight))
    return parts


def unsupported_composable_message(parts: list[ComposablePart]) -> str | None:
    """A sentence for the prompt panel when ``parts`` need composable diffusion; None for a plain prompt."""
    if len(parts) == 1 and parts[0].weight == 1.0:
        return None
    if len(parts) == 1:
        return (
            f"The prompt ends in ':{parts[0].weight:g}', which A1111 reads as a composable-diffusion weight; "
            "that is not supported yet: remove it (or put text after it)."
        )
    return (
        f"'AND' splits this prompt into {len(parts)} parts for composable diffusion, which is not "
        "supported yet: remove 'AND', or write it in lowercase to use it as a word."
    )


def refuse_composable(parts: list[ComposablePart]) -> None:
    """Raise :class:`UnsupportedPrompt` with :func:`unsupported_composable_message`'s sentence, if any."""
    message = unsupported_composable_message(parts)
    if message is not None:
        raise UnsupportedPrompt(message)
