"""LoRAs, textual-inversion embeddings and clip skip as images record them, in each tool's dialect.

A1111 keeps the ``<lora:name:weight>`` tags in the prompt text and lists the files' short hashes in
the settings line (``Lora hashes: "name: 0123456789ab, other: …"``, ``TI hashes: "…"``, ``Clip skip:
2``). ComfyUI wires ``LoraLoader`` nodes between the checkpoint and the sampler and sets clip skip with
``CLIPSetLastLayer`` (``stop_at_clip_layer: -2`` is A1111's 2); InvokeAI lists ``loras`` with weights
and counts ``clip_skip`` as layers skipped (0 is A1111's 1). Everything here turns those into one form:
prompt tags plus :class:`NetworkRef` values, so the same image means the same thing here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, Literal

NetworkKind = Literal["lora", "embedding"]
LORA_HASHES_KEY = "Lora hashes"
TI_HASHES_KEY = "TI hashes"
CLIP_SKIP_KEY = "Clip skip"

_HASH = re.compile(r"^[0-9a-fA-F]{8,64}$")


@dataclass(frozen=True)
class NetworkRef:
    """One LoRA or embedding an image was made with: its name as the prompt says it, and its hash."""

    name: str
    kind: NetworkKind = "lora"
    hash: str = ""  # A1111's short hash (12 hex digits) where the image told it
    weight: float | None = None  # the text encoder's (A1111's first number), or the only one
    unet_weight: float | None = None  # where it differs from ``weight`` (ComfyUI's strength_model)


def format_hashes(refs: list[NetworkRef] | tuple[NetworkRef, ...]) -> str:
    """``name: hash, other: hash`` — A1111's value for ``Lora hashes`` / ``TI hashes``."""
    return ", ".join(f"{ref.name.replace(':', '').replace(',', '')}: {ref.hash}" for ref in refs if ref.hash)


def parse_hashes(text: str, kind: NetworkKind) -> tuple[NetworkRef, ...]:
    """Inverse of :func:`format_hashes`; odd parts are skipped, never an error."""
    refs = []
    for part in text.split(","):
        name, _, value = part.rpartition(":")
        name, value = name.strip(), value.strip()
        if name and _HASH.match(value):
            refs.append(NetworkRef(name=name, kind=kind, hash=value.lower()))
    return tuple(refs)


def format_weight(value: float) -> str:
    number = round(float(value), 4)
    return str(int(number)) if number.is_integer() else repr(number)


def lora_tag(name: str, text_encoder_weight: float, unet_weight: float | None = None) -> str:
    """A1111's tag: ``<lora:name:w>``, or ``<lora:name:te:unet>`` when the two weights differ."""
    if unet_weight is None or math.isclose(unet_weight, text_encoder_weight):
        return f"<lora:{name}:{format_weight(text_encoder_weight)}>"
    return f"<lora:{name}:{format_weight(text_encoder_weight)}:{format_weight(unet_weight)}>"


def file_stem(name: str) -> str:
    """``styles\\fox_style.safetensors`` (ComfyUI, InvokeAI on Windows) → ``fox_style``."""
    stem = PureWindowsPath(name).name if "\\" in name else PurePosixPath(name).name
    for suffix in (".safetensors", ".ckpt", ".pt", ".pth", ".bin"):
        if stem.lower().endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def with_lora_tags(prompt: str, loras: tuple[NetworkRef, ...]) -> str:
    """``prompt`` with a tag appended for every LoRA that the prompt does not already name."""
    present = {match.lower() for match in re.findall(r"<(?:lora|lyco):([^:>]+)", prompt)}
    tags = [
        lora_tag(ref.name, 1.0 if ref.weight is None else ref.weight, ref.unet_weight)
        for ref in loras
        if ref.kind == "lora" and ref.name.lower() not in present
    ]
    if not tags:
        return prompt
    return f"{prompt}, {' '.join(tags)}" if prompt.strip() else " ".join(tags)


def a1111_network_settings(
    clip_skip: int, loras: tuple[NetworkRef, ...], embeddings: tuple[NetworkRef, ...]
) -> dict[str, str]:
    """The settings-line entries A1111 writes for these (left out where A1111 leaves them out)."""
    settings: dict[str, str] = {}
    if clip_skip > 1:
        settings[CLIP_SKIP_KEY] = str(clip_skip)
    if lora_hashes := format_hashes(loras):
        settings[LORA_HASHES_KEY] = lora_hashes
    if ti_hashes := format_hashes(embeddings):
        settings[TI_HASHES_KEY] = ti_hashes
    return settings


def refs_from_record(records: Any, kind: NetworkKind) -> tuple[NetworkRef, ...]:
    """Our JSON's ``loras`` / ``embeddings`` lists (``[{"name", "hash", "weight"}]``) as values."""
    refs = []
    for record in records if isinstance(records, list) else []:
        if isinstance(record, dict) and isinstance(record.get("name"), str):
            weight = record.get("weight")
            refs.append(
                NetworkRef(
                    name=record["name"],
                    kind=kind,
                    hash=str(record.get("hash") or ""),
                    weight=float(weight) if isinstance(weight, (int, float)) else None,
                )
            )
    return tuple(refs)


def clip_skip_from_comfyui(stop_at_clip_layer: Any) -> int | None:
    """``CLIPSetLastLayer``'s ``-2`` → A1111's 2."""
    if isinstance(stop_at_clip_layer, (int, float)) and not isinstance(stop_at_clip_layer, bool):
        value = -int(stop_at_clip_layer)
        return value if value >= 1 else None
    return None


def clip_skip_from_invokeai(layers_skipped: Any) -> int | None:
    """InvokeAI's ``clip_skip: 1`` (one layer skipped) → A1111's 2."""
    if isinstance(layers_skipped, int) and not isinstance(layers_skipped, bool) and layers_skipped >= 0:
        return layers_skipped + 1
    return None
