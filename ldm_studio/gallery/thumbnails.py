"""Thumbnails cached on disk, keyed by path + mtime + size, so an edited file gets a fresh one.

Thread-safe without locks: each thumbnail is written to a unique temp name and renamed into place,
so two threads (or two app instances) making the same one simply race to an identical result.
Callers run ``thumbnail_for`` on worker threads; nothing here touches Qt.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

THUMBNAIL_SIZE = 256  # longest side in pixels: sharp at the grid's largest zoom on HiDPI screens
JPEG_QUALITY = 85
BACKGROUND = (24, 24, 27)  # transparent images are shown over the gallery's dark background


class ThumbnailCache:
    def __init__(self, folder: str | Path | None = None, size: int = THUMBNAIL_SIZE) -> None:
        if folder is None:
            from ldm_studio.paths import user_dirs

            folder = user_dirs().cache / "thumbnails"
        self.folder = Path(folder)
        self.size = size

    def cache_path(self, path: str | Path, mtime_ns: int, file_size: int) -> Path:
        key = hashlib.sha1(f"{Path(path)}\0{mtime_ns}\0{file_size}\0{self.size}".encode()).hexdigest()
        # Two-level fan-out keeps folders small at 50,000 images.
        return self.folder / key[:2] / f"{key}.jpg"

    def cached(self, path: str | Path) -> Path | None:
        """The cached thumbnail when it is already on disk, else None (never generates)."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        thumbnail = self.cache_path(path, stat.st_mtime_ns, stat.st_size)
        return thumbnail if thumbnail.exists() else None

    def thumbnail_for(self, path: str | Path) -> Path:
        """The thumbnail file for ``path``, made now if missing. ValueError when it is not an image."""
        try:
            stat = os.stat(path)
        except OSError as error:
            raise ValueError(f"{Path(path).name} is gone or unreadable: {error.strerror}") from error
        thumbnail = self.cache_path(path, stat.st_mtime_ns, stat.st_size)
        if thumbnail.exists():
            return thumbnail
        image = self._render(Path(path))
        thumbnail.parent.mkdir(parents=True, exist_ok=True)
        temp = thumbnail.with_name(f".{secrets.token_hex(6)}.tmp")
        try:
            image.save(temp, format="JPEG", quality=JPEG_QUALITY)
            os.replace(temp, thumbnail)
        finally:
            temp.unlink(missing_ok=True)
        return thumbnail

    def _render(self, path: Path) -> Image.Image:
        try:
            with Image.open(path) as source:
                source.draft("RGB", (self.size, self.size))  # JPEG: decode at reduced scale
                image = ImageOps.exif_transpose(source)
                image.thumbnail((self.size, self.size), Image.Resampling.BICUBIC, reducing_gap=2.0)
        except (UnidentifiedImageError, Image.DecompressionBombError) as error:
            raise ValueError(f"{path.name} is not an image this app can read") from error
        except (OSError, SyntaxError, EOFError) as error:
            raise ValueError(f"{path.name} could not be read: {error}") from error
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, BACKGROUND)
            flat.paste(rgba, mask=rgba.getchannel("A"))
            return flat
        return image.convert("RGB")

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.folder.rglob("*.jpg")) if self.folder.exists() else 0
