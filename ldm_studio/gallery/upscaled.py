"""An upscaled copy of an image as a PNG, for ``ldm-studio upscale`` and the gallery's Upscale….

Every text chunk of the source is kept (so its generation parameters still read back) and what was
done is added: A1111's ``postprocessing`` line, and the parent file, the upscaler and the scale in
our own chunk's ``extra`` (or, for an image that had none, in an ``ldm-studio-upscale`` chunk).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin

from ldm_studio.gallery.metadata import OUR_CHUNK, ImageMetadata
from ldm_studio.gallery.store import write_atomic_exclusive

UPSCALE_CHUNK = OUR_CHUNK + "-upscale"  # what was done, for images that carry no record of ours
POSTPROCESSING_CHUNK = "postprocessing"  # where A1111's Extras tab records an upscale


def postprocessing_text(upscaler: str, scale: float) -> str:
    return f"Postprocess upscale by: {scale:g}, Postprocess upscaler: {upscaler}"


def upscaled_file_name(source: Path, upscaler: str, scale: float) -> str:
    """``cat-4x-UltraSharp-x4.png``: the source's name, the upscaler and the factor."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in upscaler)
    return f"{Path(source).stem}-{slug}-x{scale:g}.png"


def upscaled_png_bytes(
    result: Image.Image, source_image: Image.Image, source: Path, upscaler: str, scale: float
) -> bytes:
    """``result`` as PNG bytes with ``source_image``'s text chunks and a record of the upscale."""
    chunks = {key: value for key, value in source_image.info.items() if isinstance(value, str)}
    done = {
        "parent": str(Path(source).resolve()),
        "upscaler": upscaler,
        "upscale": scale,
        "size": list(result.size),
    }
    if OUR_CHUNK in chunks:
        try:
            record = json.loads(chunks[OUR_CHUNK])
            if isinstance(record, dict):
                extra = record.get("extra") if isinstance(record.get("extra"), dict) else {}
                record["extra"] = {**extra, **done}
                chunks[OUR_CHUNK] = json.dumps(record, ensure_ascii=False, default=str)
        except ValueError:
            pass  # someone else's text under our name: kept as it was
    else:
        chunks[UPSCALE_CHUNK] = json.dumps(done, ensure_ascii=False)
    chunks[POSTPROCESSING_CHUNK] = postprocessing_text(upscaler, scale)
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        if key == OUR_CHUNK:
            info.add_itxt(key, value, zip=len(value) > 1024)
        else:
            info.add_text(key, value)
    if result.mode not in ("RGB", "RGBA", "L", "LA"):
        result = result.convert("RGB")
    buffer = io.BytesIO()
    result.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def save_upscaled(
    result: Image.Image,
    source_image: Image.Image,
    source: Path,
    upscaler: str,
    scale: float,
    folder: Path,
) -> Path:
    """Write the upscaled PNG into ``folder`` under a free name, atomically; return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    data = upscaled_png_bytes(result, source_image, source, upscaler, scale)
    return write_atomic_exclusive(data, folder / upscaled_file_name(source, upscaler, scale))


def upscale_record(metadata: ImageMetadata) -> dict[str, Any] | None:
    """What an upscaled image says it came from (``parent``, ``upscaler``, ``upscale``); None if nothing."""
    if "parent" in metadata.extra and "upscaler" in metadata.extra:
        return {
            key: metadata.extra[key]
            for key in ("parent", "upscaler", "upscale", "size")
            if key in metadata.extra
        }
    try:
        record = json.loads(metadata.raw.get(UPSCALE_CHUNK, ""))
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
