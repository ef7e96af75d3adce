"""Saving into the gallery folder: names, atomicity, errors."""

from __future__ import annotations

import errno
import os
import re
from datetime import datetime

import pytest
from PIL import Image

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery import store as store_module
from ldm_studio.gallery.metadata import read_metadata
from ldm_studio.gallery.store import GallerySaveError, GalleryStore, prompt_slug


def request(seed=7, prompt="A cat, on a mat!"):
    return GenerationRequest(prompt=prompt, seed=seed, width=32, height=32)


def test_prompt_slug():
    assert prompt_slug("A cat, on a mat!") == "a-cat-on-a-mat"
    assert prompt_slug("Ünïcode café, 猫") == "unicode-cafe"
    assert prompt_slug("") == prompt_slug("🐱🐱") == "untitled"
    assert len(prompt_slug("word " * 100)) <= 40


def test_save_names_by_date_seed_and_slug_and_embeds_metadata(tmp_path):
    store = GalleryStore(tmp_path)
    path = store.save(Image.new("RGB", (32, 32)), request(), model_name="m", model_hash="h")
    today = datetime.now().strftime("%Y-%m-%d")
    assert path.parent == tmp_path / today
    assert re.fullmatch(r"\d{8}-\d{6}-7-a-cat-on-a-mat\.png", path.name)
    assert read_metadata(path).request == request()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind


def test_names_never_collide(tmp_path):
    store = GalleryStore(tmp_path)
    paths = [
        store.save(Image.new("RGB", (8, 8)), request(), model_name="m", model_hash="h") for _ in range(5)
    ]
    assert len(set(paths)) == 5
    assert all(p.exists() for p in paths)


def test_read_only_folder_gives_a_readable_error(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    if os.geteuid() == 0:
        # root ignores permission bits: make the write fail the way the OS would for a user.
        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(store_module, "write_atomic_exclusive", refuse)
    try:
        with pytest.raises(GallerySaveError, match="read-only") as caught:
            GalleryStore(folder).save(Image.new("RGB", (8, 8)), request(), model_name="m", model_hash="h")
        assert isinstance(caught.value, OSError)
        assert caught.value.errno == errno.EACCES
    finally:
        os.chmod(folder, 0o700)


def test_full_disk_gives_a_readable_error_and_leaves_nothing(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def full_disk(descriptor):
        real_fsync(descriptor)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.os, "fsync", full_disk)
    store = GalleryStore(tmp_path)
    with pytest.raises(GallerySaveError, match="disk is full") as caught:
        store.save(Image.new("RGB", (8, 8)), request(), model_name="m", model_hash="h")
    assert caught.value.errno == errno.ENOSPC
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_without_hard_links_the_claim_fallback_still_never_collides(tmp_path, monkeypatch):
    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(store_module.os, "link", no_links)
    store = GalleryStore(tmp_path)
    paths = [
        store.save(Image.new("RGB", (8, 8)), request(), model_name="m", model_hash="h") for _ in range(3)
    ]
    assert len(set(paths)) == 3
    assert sorted(p.name for p in paths[0].parent.iterdir()) == sorted(p.name for p in paths)


def test_stale_temp_files_are_cleaned(tmp_path):
    store = GalleryStore(tmp_path)
    day = tmp_path / "2024-01-01"
    day.mkdir()
    old = day / ".ldm-deadbeef.part"
    fresh = day / ".ldm-cafe.part"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(old, (1, 1))
    assert store.remove_stale_temp_files() == 1
    assert not old.exists() and fresh.exists()
