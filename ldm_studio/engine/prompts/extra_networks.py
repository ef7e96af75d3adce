"""A1111's extra-network tags: ``<lora:name:weight>``, ``<lora:name:te:unet>``, ``<lyco:…>``, ``<hypernet:…>``

As in A1111 (``extra_networks.parse_prompt``) every ``<word:args>`` tag is removed from the text CLIP
reads, whatever the word; an unterminated ``<lora:`` stays text. Arguments split on ``:``; an argument
``key=value`` is named (``te=``, ``unet=``, ``dyn=``). A1111's LoRA weights: te = 2nd argument or 1.0,
unet = 3rd argument or te. Tags are taken from the positive prompt only: A1111 sends a negative prompt's
tags to CLIP as text, and so do we.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ldm_studio.engine.prompts.errors import PromptError

_TAG = re.compile(r"<(\w+):([^>]+)>")
LORA_KINDS = frozenset({"lora", "lyco"})
KNOWN_KINDS = LORA_KINDS | {"hypernet"}


@dataclass(frozen=True)
class ExtraNetworkTag:
    """One ``<kind:arg:arg…>`` tag, as written (``text``) and split."""

    kind: str
    positional: tuple[str, ...]
    named: tuple[tuple[str, str], ...]
    text: str

    @property
    def name(self) -> str:
        return self.positional[0] if self.positional else ""

    @property
    def te_weight(self) -> float:
        """Text-encoder multiplier (A1111: 2nd argument, ``te=``, else 1.0)."""
        value = self.positional[1] if len(self.positional) > 1 else "1.0"
        return self._number(dict(self.named).get("te", value), "te")

    @property
    def unet_weight(self) -> float:
        """UNet multiplier (A1111: 3rd argument, ``unet=``, else the text-encoder multiplier)."""
        if "unet" in dict(self.named):
            return self._number(dict(self.named)["unet"], "unet")
        if len(self.positional) > 2:
            return self._number(self.positional[2], "unet")
        return self.te_weight

    @property
    def weight(self) -> float:
        """A hypernetwork's single multiplier (2nd argument, else 1.0)."""
        return self.te_weight

    def _number(self, literal: str, role: str) -> float:
        try:
            value = float(literal)
        except ValueError:
            raise PromptError(f"In {self.text} the {role} weight '{literal}' is not a number.") from None
        if not math.isfinite(value):
            raise PromptError(f"In {self.text} the {role} weight is {value:g}; write a finite number.")
        return value


def extract_extra_networks(prompt: str) -> tuple[str, list[ExtraNetworkTag]]:
    """The prompt without its tags, and the tags in the order written. Never raises."""
    tags: list[ExtraNetworkTag] = []

    def take(match: re.Match) -> str:
        positional: list[str] = []
        named: list[tuple[str, str]] = []
        for item in match.group(2).split(":"):
            parts = item.split("=", 2)
            if len(parts) == 2:
                named.append((parts[0], parts[1]))
            else:
                positional.append(item)
        tags.append(ExtraNetworkTag(match.group(1), tuple(positional), tuple(named), match.group(0)))
        return ""

    return _TAG.sub(take, prompt), tags
