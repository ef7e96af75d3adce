"""Reusing an image's LoRAs and embeddings: find each in the library by name, then by A1111's hash.

A tag whose name is unknown but whose hash matches a file of another name is rewritten to that name
(people rename downloads); what is still missing is named in one sentence and the rest is reused.
Pure logic: the library model runs it off the GUI thread, because hashing files can take seconds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ldm_studio.app.network_entries import KIND_WORDS, NetworkEntry
from ldm_studio.app.prompt_text import loras_in
from ldm_studio.engine.catalog import NETWORK_HASH_LENGTH
from ldm_studio.gallery.networks import NetworkRef


@dataclass(frozen=True)
class Rename:
    kind: str
    old: str
    new: str


@dataclass(frozen=True)
class NetworkResolution:
    """The prompts with renamed networks rewritten, and what the library lacks."""

    prompt: str
    negative_prompt: str
    renamed: tuple[Rename, ...] = ()
    missing: tuple[NetworkRef, ...] = ()
    source: tuple[str, str] = ("", "")  # the prompts as reused, before any rename

    @property
    def message(self) -> str:
        """'Not in your library: fox_style (LoRA), bad-hands (embedding) — the rest was reused.'"""
        if not self.missing:
            return ""
        names = ", ".join(f"{ref.name} ({KIND_WORDS[ref.kind]})" for ref in self.missing)
        return f"Not in your library: {names} — the rest was reused."

    @property
    def note(self) -> str:
        """'fox_style is fox_v2 in your library (same file)': for the status line."""
        return "; ".join(f"{r.old} is {r.new} in your library (same file)" for r in self.renamed)


def wanted_networks(
    prompt: str, loras: Sequence[NetworkRef], embeddings: Sequence[NetworkRef]
) -> tuple[NetworkRef, ...]:
    """The LoRAs the prompt's tags name (with the image's hash for each, where it gave one) and the
    LoRAs and embeddings the image lists: each name once, in the order met."""
    hashes = {ref.name: ref.hash for ref in loras}
    wanted: dict[tuple[str, str], NetworkRef] = {}
    for tag in loras_in(prompt):
        wanted.setdefault(("lora", tag.name), NetworkRef(tag.name, "lora", hashes.get(tag.name, "")))
    for ref in (*loras, *embeddings):
        wanted.setdefault((ref.kind, ref.name), ref)
    return tuple(wanted.values())


def _by_name(ref: NetworkRef, library: Sequence[NetworkEntry]) -> NetworkEntry | None:
    candidates = [entry for entry in library if entry.kind == ref.kind and not entry.error]
    for same in (
        lambda entry: entry.name == ref.name,
        lambda entry: ref.kind == "lora" and entry.alias == ref.name,  # A1111 accepts the output name
    ):
        found = next((entry for entry in candidates if same(entry)), None)
        if found is not None:
            return found
    return None


def _by_hash(
    ref: NetworkRef, library: Sequence[NetworkEntry], hash_of: Callable[[NetworkEntry], str]
) -> NetworkEntry | None:
    wanted = ref.hash.lower()[:NETWORK_HASH_LENGTH]
    if len(wanted) < NETWORK_HASH_LENGTH:
        return None
    candidates = [entry for entry in library if entry.kind == ref.kind and not entry.error]
    # files whose hash is already known first: most lookups then read no file at all
    for entry in sorted(candidates, key=lambda entry: not entry.sha256):
        if hash_of(entry).lower()[:NETWORK_HASH_LENGTH] == wanted:
            return entry
    return None


def _rename_lora(prompt: str, old: str, new: str) -> str:
    return re.sub(rf"<(lora|lyco):{re.escape(old)}(?=[:>])", lambda m: f"<{m.group(1)}:{new}", prompt)


def _rename_word(text: str, old: str, new: str) -> str:
    return re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", new.replace("\\", "\\\\"), text)


def resolve_networks(
    prompt: str,
    negative_prompt: str,
    wanted: Sequence[NetworkRef],
    library: Sequence[NetworkEntry],
    hash_of: Callable[[NetworkEntry], str],
) -> NetworkResolution:
    """Each wanted network by name, else by hash (``hash_of`` is called only when a name is missing)."""
    source = (prompt, negative_prompt)
    renamed: list[Rename] = []
    missing: list[NetworkRef] = []
    for ref in wanted:
        if _by_name(ref, library) is not None:
            continue
        found = _by_hash(ref, library, hash_of) if ref.hash else None
        if found is None:
            missing.append(ref)
            continue
        renamed.append(Rename(ref.kind, ref.name, found.name))
        if ref.kind == "lora":
            prompt = _rename_lora(prompt, ref.name, found.name)
        else:
            prompt = _rename_word(prompt, ref.name, found.name)
            negative_prompt = _rename_word(negative_prompt, ref.name, found.name)
    return NetworkResolution(prompt, negative_prompt, tuple(renamed), tuple(missing), source)
