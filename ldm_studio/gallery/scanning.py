"""Finding the gallery's images on disk and reading the values the index keeps for each."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ldm_studio.gallery.metadata import ImageMetadata, read_metadata
from ldm_studio.gallery.store import TEMP_PREFIX

IMAGE_SUFFIXES = (".png",)


def scan_images(folder: Path) -> Iterator[tuple[str, int, int]]:
    """(path, mtime_ns, size) of every PNG under ``folder``, skipping hidden files and temp files."""
    stack = [str(folder)]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue  # unreadable or vanished folder: its images simply are not there
        for entry in entries:
            if entry.name.startswith((".", TEMP_PREFIX)):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.name.lower().endswith(IMAGE_SUFFIXES) and entry.is_file():
                    stat = entry.stat()
                    yield entry.path, stat.st_mtime_ns, stat.st_size
            except OSError:
                continue


def row_values(path: str, mtime_ns: int, size: int, meta: ImageMetadata | None) -> tuple:
    created = (meta.created if meta and meta.created else None) or mtime_ns / 1e9
    if meta is None:
        return (path, mtime_ns, size, created, "", None, None, None, "", "", None)
    return (
        path,
        mtime_ns,
        size,
        created,
        meta.model_name or "",
        meta.seed,
        meta.width,
        meta.height,
        meta.prompt,
        meta.negative_prompt,
        meta.source,
    )


def read_row(path: str, mtime_ns: int, size: int) -> tuple | None:
    """Index values for one file; None when it is not a readable image."""
    try:
        meta = read_metadata(path)
    except ValueError:
        return None
    return row_values(path, mtime_ns, size, meta)
