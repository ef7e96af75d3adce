"""Reading and editing prompt text for the prompt box: LoRA tags, highlighting, the AND warning.

Pure text, no Qt and no torch (a test imports it in a fresh interpreter and checks): the prompt box
calls these on the GUI thread as the user types. Tag edits are returned as a character range and its
replacement, so the box can apply them through its cursor and keep its undo history.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ldm_studio.engine.prompts import PromptError, emphasis_spans, split_composable
from ldm_studio.engine.prompts import unsupported_composable_message as composable_message
from ldm_studio.gallery.networks import format_weight, lora_tag

__all__ = ["Highlight", "PromptLora", "highlights", "insertion", "lora_tag", "loras_in", "prompt_warning"]

_LORA_TAG = re.compile(r"<(lora|lyco):([^>]+)>")
_ANY_TAG = re.compile(r"<(\w+):([^>]+)>")  # what A1111 removes from the text CLIP reads
WEIGHT_RANGE = (-2.0, 3.0)


@dataclass(frozen=True)
class PromptLora:
    """One ``<lora:name:weight>`` tag in the prompt box, with where it is."""

    name: str
    weight: float  # the text encoder's (A1111's first number); 1.0 when none or unreadable
    unet_weight: float | None  # a third number, where the tag has one
    start: int
    end: int

    @property
    def text_range(self) -> tuple[int, int]:
        return self.start, self.end


@dataclass(frozen=True)
class Highlight:
    """Characters ``start:end`` shown as stronger / weaker emphasis, or as an extra-network tag."""

    start: int
    end: int
    kind: str  # "stronger", "weaker" or "network"
    weight: float = 1.0


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def loras_in(prompt: str) -> list[PromptLora]:
    """Every LoRA tag in the order written (names may repeat: each tag is its own entry)."""
    found = []
    for match in _LORA_TAG.finditer(prompt):
        positional = [item for item in match.group(2).split(":") if "=" not in item]
        if not positional or not positional[0].strip():
            continue
        weight = _number(positional[1]) if len(positional) > 1 else 1.0
        unet = _number(positional[2]) if len(positional) > 2 else None
        found.append(
            PromptLora(positional[0], 1.0 if weight is None else weight, unet, match.start(), match.end())
        )
    return found


def reweighted(tag: PromptLora, weight: float) -> str:
    """The tag's new text at ``weight`` (a separate UNet weight moves with it by the same amount)."""
    weight = min(max(weight, WEIGHT_RANGE[0]), WEIGHT_RANGE[1])
    unet = None if tag.unet_weight is None else tag.unet_weight + (weight - tag.weight)
    return lora_tag(tag.name, weight, unet)


def removal_range(prompt: str, tag: PromptLora) -> tuple[int, int]:
    """The characters to delete to remove ``tag``: the tag and one separator beside it."""
    start, end = tag.start, tag.end
    after = prompt[end:]
    before = prompt[:start]
    trailing = re.match(r"\s*,?\s*", after)
    if trailing and trailing.end() and (start == 0 or before.rstrip().endswith(",") or not before.strip()):
        return start, end + trailing.end()
    leading = re.search(r"\s*,?\s*$", before)
    if leading and leading.start() < start:
        return leading.start(), end
    return start, end


def insertion(prompt: str, position: int, text: str) -> tuple[int, str]:
    """Where to insert ``text`` at ``position`` and with which separators: ``(position, text)``.

    A tag or word typed after other words gets ", " before it (unless one is there already).
    """
    position = min(max(position, 0), len(prompt))
    before = prompt[:position].rstrip()
    after = prompt[position:]
    prefix = "" if not before or before.endswith((",", "(", "[", "{", "\n")) else ", "
    if not prefix and before and not prompt[:position].endswith((" ", "\n", "(", "[")):
        prefix = " "
    suffix = ", " if after.strip() and not after.lstrip().startswith((",", ")", "]")) else ""
    return len(before) if prefix else position, prefix + text + suffix


def highlights(prompt: str) -> list[Highlight]:
    """Emphasis ranges (A1111's weights) and extra-network tags, for the prompt box's colours."""
    tags = [(match.start(), match.end()) for match in _ANY_TAG.finditer(prompt)]
    spans = [
        Highlight(span.start, span.end, "stronger" if span.weight > 1 else "weaker", span.weight)
        for span in emphasis_spans(prompt)
    ]
    outside = [span for span in spans if not any(start <= span.start < end for start, end in tags)]
    return sorted(outside + [Highlight(start, end, "network") for start, end in tags], key=lambda h: h.start)


def prompt_warning(prompt: str) -> str | None:
    """The sentence to show before Generate when the engine cannot do what the prompt asks (AND)."""
    text = _ANY_TAG.sub("", prompt)
    try:
        return composable_message(split_composable(text))
    except PromptError as error:
        return str(error)


def weight_text(weight: float) -> str:
    return format_weight(weight)
