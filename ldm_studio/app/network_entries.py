"""What the LoRA / embedding picker shows about one file: a plain value, built from the engine's scan.

Qt-free and torch-free: the picker and the token counter read these, the engine's ``LoraInfo`` /
``EmbeddingInfo`` stay behind the library model (``app.network_library``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ldm_studio.engine.catalog import family_short_label, human_size

NetworkKind = Literal["lora", "embedding"]
KIND_WORDS = {"lora": "LoRA", "embedding": "embedding"}
# Families whose LoRAs and embeddings are interchangeable only with themselves (what the engine refuses).
CHECKED_FAMILIES = frozenset({"sd1", "sd2", "sdxl", "ldm-studio"})  # the bundled model: its own shapes
UNKNOWN_FAMILIES = frozenset({"", "unknown", "unreadable"})


@dataclass(frozen=True)
class NetworkEntry:
    kind: NetworkKind
    name: str  # what the prompt says: <lora:name:1>, or the embedding's word
    path: Path
    size: int = 0
    family: str = ""  # sd1 / sd2 / sdxl, "" when the file does not tell
    network_type: str = ""  # LoRA, LoCon, LoHa, LoKr (LoRAs only)
    rank: int | None = None
    vector_count: int = 0  # embeddings: the tokens it takes in the prompt
    trigger_words: tuple[str, ...] = ()
    top_tags: tuple[str, ...] = ()
    alias: str = ""  # kohya's ss_output_name, which A1111 also accepts in tags
    sha256: str = ""  # where already known (kohya's stored hash, the hash cache)
    preview: Path | None = None
    error: str = ""  # why the file cannot be used

    @property
    def details(self) -> str:
        """'SD 1.x · LoCon · rank 8 · 37.9 MB': the second line of a picker row."""
        parts = [family_short_label(self.family) if self.family else "base not stated"]
        if self.kind == "lora":
            parts.append(self.network_type or "LoRA")
            if self.rank:
                parts.append(f"rank {self.rank}")
        elif self.vector_count:
            parts.append(f"{self.vector_count} token{'s' if self.vector_count != 1 else ''}")
        parts.append(human_size(self.size))
        return " · ".join(parts)

    @property
    def words(self) -> tuple[str, ...]:
        """Trigger words first, then the most frequent training tags, each once."""
        seen: dict[str, None] = {}
        for word in (*self.trigger_words, *self.top_tags):
            seen.setdefault(word)
        return tuple(seen)

    def incompatibility(self, model_family: str) -> str:
        """Why this file cannot be used with a model of ``model_family``; "" when it can (or may)."""
        if self.error:
            return self.error
        if not self.family or not model_family or self.family == model_family:
            return ""
        if self.family in CHECKED_FAMILIES and model_family not in UNKNOWN_FAMILIES:
            return (
                f"Made for {family_short_label(self.family)}; the loaded model is "
                f"{family_short_label(model_family)}"
            )
        return ""

    def matches(self, query: str) -> bool:
        """Search as you type: every word of ``query`` appears in the name, alias, words or family."""
        haystack = " ".join(
            (self.name, self.alias, family_short_label(self.family), self.network_type, *self.words)
        ).lower()
        return all(word in haystack for word in query.lower().split())


def entry_from_lora(info: Any) -> NetworkEntry:
    """From ``engine.lora.LoraInfo``."""
    return NetworkEntry(
        "lora",
        info.name,
        Path(info.path),
        info.size,
        info.family,
        info.network_type,
        info.rank,
        trigger_words=tuple(info.trigger_words),
        top_tags=tuple(info.top_tags),
        alias=info.output_name if info.output_name != info.name else "",
        sha256=info.sha256,
        preview=info.preview,
        error=info.error,
    )


def entry_from_embedding(info: Any) -> NetworkEntry:
    """From ``engine.embeddings.EmbeddingInfo``."""
    return NetworkEntry(
        "embedding",
        info.name,
        Path(info.path),
        info.size,
        info.family,
        vector_count=info.vector_count,
        trigger_words=(info.token,) if info.token and info.token != info.name else (),
        sha256=info.sha256,
        preview=info.preview,
        error=info.error,
    )
