"""The gallery's plain values: an indexed image, a query, a reconcile report. No SQLite, no Qt."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GalleryEntry:
    """One indexed image, as the gallery view shows it."""

    id: int
    path: Path
    created: float
    model: str
    seed: int | None
    width: int | None
    height: int | None
    prompt: str
    negative_prompt: str
    source: str | None
    favourite: bool


@dataclass(frozen=True)
class GalleryQuery:
    """What the view asks for. Dates are epoch seconds, ``date_to`` exclusive."""

    text: str = ""
    model: str | None = None
    date_from: float | None = None
    date_to: float | None = None
    favourites_only: bool = False
    newest_first: bool = True


@dataclass(frozen=True)
class ReconcileReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unreadable: int = 0

    def __add__(self, other: ReconcileReport) -> ReconcileReport:
        return ReconcileReport(
            self.added + other.added,
            self.updated + other.updated,
            self.removed + other.removed,
            self.unreadable + other.unreadable,
        )

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


def fts_query(text: str) -> str | None:
    """Typed text → an FTS5 query: every word must match, the words as prefixes (results while typing)."""
    words = re.findall(r"[^\W_]+", text)
    return " ".join(f'"{word}"*' for word in words) or None


def row_to_entry(row: Sequence) -> GalleryEntry:
    return GalleryEntry(
        id=row[0],
        path=Path(row[1]),
        created=row[2],
        model=row[3],
        seed=row[4],
        width=row[5],
        height=row[6],
        prompt=row[7],
        negative_prompt=row[8],
        source=row[9],
        favourite=bool(row[10]),
    )
