"""Saving finished images: the batch into the gallery folder (worker thread), or one image where the
user chooses ("Save as…", e.g. when the gallery folder is full or read-only)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

from ldm_studio.gallery.metadata import encode_png, image_request
from ldm_studio.gallery.store import GallerySaveError, GalleryStore


def _metadata_of(result: Any) -> tuple[str, str, dict[str, Any]]:
    metadata = result.metadata
    extra = {key: value for key, value in metadata.items() if key not in ("model_name", "model_hash")}
    return metadata.get("model_name", ""), metadata.get("model_hash", ""), extra


def save_finished(store: GalleryStore, result: Any) -> list[Path]:
    """Write every image of a Finished result, each with the request that reproduces it alone."""
    model_name, model_hash, extra = _metadata_of(result)
    return [
        store.save(
            image,
            image_request(result.request, index),
            model_name=model_name,
            model_hash=model_hash,
            extra=extra,
        )
        for index, image in enumerate(result.images)
    ]


def save_image_as(result: Any, index: int, path: Path | str) -> Path:
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
