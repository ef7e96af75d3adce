"""Saving finished images: the batch into the gallery folder (worker thread), or one image where the
user chooses ("Save as…", e.g. when the gallery folder is full or read-only)."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ldm_studio.app.jobs import SavedImage
from ldm_studio.engine.events import Finished
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.metadata import (
    OUR_CHUNK,
    ImageMetadata,
    encode_png,
    image_request,
    metadata_from_chunks,
    our_chunk_json,
    split_record,
)
from ldm_studio.gallery.store import GallerySaveError, GalleryStore


def _metadata_of(result: Finished) -> tuple[str, str, dict[str, Any]]:
    return split_record(result.metadata)


def save_finished(store: GalleryStore, result: Finished) -> list[SavedImage]:
    """Write every image of a Finished result, each with the request that reproduces it alone.

    Each saved image comes back with the metadata it was written with, parsed the way the gallery
    reads files, so the GUI can index and show it without opening the PNG it was just handed.
    """
    model_name, model_hash, extra = _metadata_of(result)
    saved = []
    for index, image in enumerate(result.images):
        request = image_request(result.request, index)
        path = store.save(image, request, model_name=model_name, model_hash=model_hash, extra=extra)
        saved.append(SavedImage(path, written_metadata(request, image.size, model_name, model_hash, extra)))
    return saved


def written_metadata(
    request: GenerationRequest, size: tuple[int, int], model_name: str, model_hash: str, extra: dict[str, Any]
) -> ImageMetadata:
    """What ``read_metadata`` would find in the file ``store.save`` writes for these values."""
    chunk = our_chunk_json(
        request, model_name=model_name, model_hash=model_hash, extra=extra, created=time.time()
    )
    return metadata_from_chunks({OUR_CHUNK: chunk}, size)


class GallerySaver:
    """The worker's saver: into the gallery store while autosave is on (asked at each result)."""

    def __init__(self, store: GalleryStore, enabled: Callable[[], bool] = lambda: True) -> None:
        self.store = store
        self.enabled = enabled

    def __call__(self, result: Finished) -> list[SavedImage]:
        return save_finished(self.store, result) if self.enabled() else []


def save_image_as(result: Finished, index: int, path: Path | str) -> Path:
    """Write image ``index`` of a Finished result to ``path`` (a PNG with its metadata); return the path.

    The user picked the name, so an existing file is replaced, atomically: a failure (full disk,
    read-only folder) leaves the old file untouched and raises GallerySaveError with the reason.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_name(path.name + ".png")
    model_name, model_hash, extra = _metadata_of(result)
    data = encode_png(
        result.images[index],
        image_request(result.request, index),
        model_name=model_name,
        model_hash=model_hash,
        extra=extra,
    )
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with open(temp, "xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except OSError as error:
        reason = error.strerror or str(error)
        raise GallerySaveError(
            f"Could not save {path.name} in {path.parent}: {reason}.", error.errno
        ) from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return path
