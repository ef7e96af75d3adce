"""Saving a finished batch into the gallery folder (runs on the worker thread)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ldm_studio.gallery.metadata import image_request
from ldm_studio.gallery.store import GalleryStore


def save_finished(store: GalleryStore, result: Any) -> list[Path]:
    """Write every image of a Finished result, each with the request that reproduces it alone."""
    metadata = result.metadata
    extra = {key: value for key, value in metadata.items() if key not in ("model_name", "model_hash")}
    return [
        store.save(
            image,
            image_request(result.request, index),
            model_name=metadata.get("model_name", ""),
            model_hash=metadata.get("model_hash", ""),
            extra=extra,
        )
        for index, image in enumerate(result.images)
    ]
