"""The gallery's Qt list model: lazy rows, lazy thumbnails, live inserts, background scans."""

from __future__ import annotations

import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap

from ldm_studio.app import gallery_model
from ldm_studio.app.gallery_model import EntryRole, FavouriteRole, GalleryModel, ThumbnailStateRole
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.index import GalleryIndex, GalleryQuery
from ldm_studio.gallery.store import GalleryStore
from ldm_studio.gallery.thumbnails import ThumbnailCache


def save(store: GalleryStore, prompt: str, seed: int, model_name: str = "tiny"):
    image = Image.new("RGB", (16, 16), (seed * 9 % 255, 80, 160))
    request = GenerationRequest(prompt=prompt, seed=seed, width=16, height=16)
    return store.save(image, request, model_name=model_name, model_hash="h")


@pytest.fixture
def gallery(tmp_path, qtbot):
    store = GalleryStore(tmp_path / "gallery")
    for seed in range(25):
        save(store, f"{'fox' if seed % 5 == 0 else 'whale'} number {seed}", seed)
    index = GalleryIndex()
    index.add_root(store.root)
    model = GalleryModel(index, ThumbnailCache())
    yield store, index, model
    model.wait_for_background()
    model.loader.wait()
    index.close()


def test_background_scan_fills_the_model(gallery, qtbot):
    _, _, model = gallery
    assert model.rowCount() == 0  # the index starts empty; the start-up scan finds the files
    with qtbot.waitSignal(model.reconciled, timeout=10_000) as report:
        model.reconcile_in_background()
    assert report.args[0].added == 25
    assert model.rowCount() == 25
    model.set_query(GalleryQuery(text="fox"))
    assert model.rowCount() == 5
    assert all("fox" in model.data(model.index(row), EntryRole).prompt for row in range(5))


def test_rows_and_thumbnails_load_only_when_asked(gallery, qtbot, monkeypatch):
    store, index, model = gallery
    index.reconcile()
    monkeypatch.setattr(gallery_model, "PAGE", 10)
    pages = []
    real_entries = index.entries
    monkeypatch.setattr(index, "entries", lambda ids: pages.append(len(ids)) or real_entries(ids))
    model.refresh()
    assert pages == []  # a query fetches ids only

    assert model.data(model.index(3), FavouriteRole) is False
    model.data(model.index(7), EntryRole)
    assert pages == [10]  # rows 0-9 came as one page
    model.data(model.index(21), EntryRole)
    assert pages == [10, 5]

    first = model.index(0)
    assert model.data(first, Qt.ItemDataRole.DecorationRole) is None
    assert model.data(first, ThumbnailStateRole) == "loading"
    qtbot.waitUntil(
        lambda: isinstance(model.data(first, Qt.ItemDataRole.DecorationRole), QPixmap), timeout=10_000
    )
    assert model.data(first, ThumbnailStateRole) == "ready"
    assert model.loaded_thumbnails() == 1  # nobody painted the other 24


def test_unreadable_thumbnail_is_marked_failed(gallery, qtbot):
    store, index, model = gallery
    index.reconcile()
    model.refresh()
    victim = model.data(model.index(0), EntryRole).path
    victim.write_bytes(b"\x89PNG\r\n\x1a\n broken now")
    model.data(model.index(0), Qt.ItemDataRole.DecorationRole)
    qtbot.waitUntil(lambda: model.data(model.index(0), ThumbnailStateRole) == "failed", timeout=10_000)


def test_add_saved_shows_a_new_image_at_once_when_it_matches(gallery, qtbot):
    store, index, model = gallery
    index.reconcile()
    model.set_query(GalleryQuery(text="fox"))
    with qtbot.waitSignal(model.rowsInserted):
        model.add_saved(save(store, "a fox, brand new", 99))
    assert model.rowCount() == 6
    assert model.data(model.index(0), EntryRole).prompt == "a fox, brand new"
    model.add_saved(save(store, "a whale, brand new", 100))  # indexed, but not a fox
    assert model.rowCount() == 6
    assert index.count() == 27
    model.set_query(GalleryQuery(newest_first=False))
    model.add_saved(save(store, "oldest-first view", 101))
    assert model.data(model.index(model.rowCount() - 1), EntryRole).prompt == "oldest-first view"


def test_unstarring_in_the_favourites_view_removes_the_row(gallery):
    _, index, model = gallery
    index.reconcile()
    model.refresh()
    model.set_favourite([0, 1, 2], True)
    assert model.data(model.index(1), FavouriteRole) is True
    model.set_query(GalleryQuery(favourites_only=True))
    assert model.rowCount() == 3
    model.set_favourite([1], False)
    assert model.rowCount() == 2
    assert len(index.search_ids(GalleryQuery(favourites_only=True))) == 2


def test_drag_out_carries_file_urls(gallery):
    _, index, model = gallery
    index.reconcile()
    model.refresh()
    mime = model.mimeData([model.index(0), model.index(1)])
    paths = [url.toLocalFile() for url in mime.urls()]
    assert paths == [model.data(model.index(row), EntryRole).path.as_posix() for row in (0, 1)]
