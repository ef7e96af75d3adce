"""Reading an image to reuse how it was made: a PNG from us, A1111, ComfyUI or InvokeAI.

The session calls this when a file is dropped on the window; the metadata's LoRAs and embeddings are
then looked up in the library (``app.network_library``) while the panel already shows the rest.
"""

from __future__ import annotations

from pathlib import Path

from ldm_studio.gallery.metadata import ImageMetadata, read_metadata


def read_reusable(path: Path) -> tuple[ImageMetadata | None, str]:
    """(metadata, "") for an image that tells how it was made, else (None, a sentence why not)."""
    try:
        metadata = read_metadata(path)
    except (OSError, ValueError) as error:
        return None, f"{path.name} cannot be read as an image: {error}"
    if not metadata.prompt and metadata.seed is None:
        return None, f"{path.name} carries no generation settings to reuse."
    return metadata, ""
