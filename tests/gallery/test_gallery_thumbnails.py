"""Disk-cached thumbnails, and the gallery package staying free of Qt."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PIL import Image

from ldm_studio.gallery.thumbnails import ThumbnailCache
from ldm_studio.paths import user_dirs


def test_thumbnail_is_made_once_and_cached_in_the_cache_dir(tmp_path):
    source = tmp_path / "big.png"
    Image.new("RGB", (640, 320), (200, 10, 10)).save(source)
    cache = ThumbnailCache()
    assert cache.folder == user_dirs().cache / "thumbnails"
    assert cache.cached(source) is None

    thumbnail = cache.thumbnail_for(source)
    assert thumbnail.is_relative_to(cache.folder)
    with Image.open(thumbnail) as image:
        assert image.size == (256, 128)
        red, green, _ = image.getpixel((10, 10))
        assert red > 180 and green < 40
    made_at = thumbnail.stat().st_mtime_ns
    assert cache.thumbnail_for(source) == thumbnail == cache.cached(source)
    assert thumbnail.stat().st_mtime_ns == made_at  # served from disk, not re-rendered


def test_changed_file_gets_a_new_thumbnail(tmp_path):
    source = tmp_path / "a.png"
    Image.new("RGB", (64, 64), (0, 0, 0)).save(source)
    cache = ThumbnailCache(tmp_path / "thumbs")
    first = cache.thumbnail_for(source)
    Image.new("RGB", (64, 64), (255, 255, 255)).save(source)
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))
    second = cache.thumbnail_for(source)
    assert second != first
    with Image.open(second) as image:
        assert image.getpixel((5, 5))[0] > 240


def test_transparent_images_are_flattened_and_bad_files_raise(tmp_path):
    source = tmp_path / "alpha.png"
    Image.new("RGBA", (40, 40), (255, 255, 255, 0)).save(source)
    cache = ThumbnailCache(tmp_path / "thumbs")
    with Image.open(cache.thumbnail_for(source)) as image:
        assert image.mode == "RGB" and max(image.getpixel((3, 3))) < 60  # dark background, not white
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(ValueError, match="broken.png"):
        cache.thumbnail_for(broken)
    with pytest.raises(ValueError, match="gone"):
        cache.thumbnail_for(tmp_path / "missing.png")


def test_gallery_package_does_not_import_qt():
    code = (
        "import sys, ldm_studio.gallery.index, ldm_studio.gallery.store, ldm_studio.gallery.thumbnails;"
        "print(sorted(m for m in sys.modules if m.startswith(('PySide6', 'torch'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
