"""The SQLite index: search, filters, favourites, rebuild, reconcile, imports."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest
from PIL import Image, PngImagePlugin

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.gallery.index import GalleryIndex, GalleryQuery, fts_query
from ldm_studio.gallery.store import GalleryStore
from ldm_studio.paths import user_dirs

PROMPTS = [
    ("a red fox in the snow", "fox-model"),
    ("a blue whale, deep ocean", "sea-model"),
    ("red roses, oil painting", "fox-model"),
    ("Café at night, Ünïcode", "sea-model"),
    ("portrait of a redhead", "fox-model"),
]


@pytest.fixture
def gallery(tmp_path):
    store = GalleryStore(tmp_path / "gallery")
    index = GalleryIndex()
    index.add_root(store.root)
    paths = []
    for seed, (prompt, model) in enumerate(PROMPTS):
        image = Image.new("RGB", (16, 16), (seed * 40, 0, 0))
        paths.append(store.save(image, GenerationRequest(prompt=prompt, seed=seed, width=16, height=16),
                                model_name=model, model_hash="h"))  # fmt: skip
        index.add(paths[-1])
        time.sleep(0.002)  # distinct creation times, so order is well defined
    yield store, index, paths
    index.close()


def prompts_of(index, query):
    entries = index.entries(index.search_ids(query))
    return [entries[i].prompt for i in index.search_ids(query)]


def test_index_lives_in_the_user_data_dir(gallery):
    _, index, _ = gallery
    assert index.db_path == user_dirs().gallery_index
    assert index.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_fts_query_makes_prefix_words():
    assert fts_query("red fo") == '"red"* "fo"*'
    assert fts_query('  "quoted" OR (x) ') == '"quoted"* "OR"* "x"*'
    assert fts_query(" ,, ") is None


def test_search_filters_and_order(gallery):
    _, index, _ = gallery
    assert prompts_of(index, GalleryQuery()) == [p for p, _ in reversed(PROMPTS)]
    assert prompts_of(index, GalleryQuery(newest_first=False)) == [p for p, _ in PROMPTS]
    assert prompts_of(index, GalleryQuery(text="red")) == [
        "portrait of a redhead",
        "red roses, oil painting",
        "a red fox in the snow",
    ]
    assert prompts_of(index, GalleryQuery(text="red f")) == ["a red fox in the snow"]
    assert prompts_of(index, GalleryQuery(text="cafe unicode")) == ["Café at night, Ünïcode"]
    assert prompts_of(index, GalleryQuery(text='"); DROP TABLE images; --')) == []
    assert prompts_of(index, GalleryQuery(model="sea-model", newest_first=False)) == [
        "a blue whale, deep ocean",
        "Café at night, Ünïcode",
    ]
    assert index.models() == ["fox-model", "sea-model"]


def test_date_filter(gallery):
    _, index, _ = gallery
    entries = index.entries(index.search_ids(GalleryQuery(newest_first=False)))
    created = sorted(e.created for e in entries.values())
    middle = GalleryQuery(date_from=created[1], date_to=created[3], newest_first=False)
    assert prompts_of(index, middle) == [PROMPTS[1][0], PROMPTS[2][0]]
    assert prompts_of(index, GalleryQuery(date_from=created[-1] + 1)) == []


def test_entries_carry_metadata(gallery):
    _, index, paths = gallery
    entry = index.entry_by_path(paths[1])
    assert (entry.prompt, entry.model, entry.seed, entry.width, entry.height) == (
        "a blue whale, deep ocean",
        "sea-model",
        1,
        16,
        16,
    )
    assert entry.source == "ldm-studio" and not entry.favourite


def test_favourites_filter_and_survive_rebuild_and_lost_index(gallery):
    _, index, paths = gallery
    fox, whale = index.entry_by_path(paths[0]), index.entry_by_path(paths[1])
    index.set_favourite([fox.id, whale.id], True)
    index.set_favourite([whale.id], False)
    assert prompts_of(index, GalleryQuery(favourites_only=True)) == ["a red fox in the snow"]

    report = index.rebuild()
    assert report.added == len(PROMPTS)
    assert prompts_of(index, GalleryQuery(favourites_only=True)) == ["a red fox in the snow"]

    # Even when the index file itself is lost, the sidecar brings the star back.
    db_path, roots = index.db_path, index.roots()
    index.close()
    for suffix in ("", "-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    fresh = GalleryIndex(db_path)
    for root in roots:
        fresh.add_root(root)
    fresh.reconcile()
    assert prompts_of(fresh, GalleryQuery(favourites_only=True)) == ["a red fox in the snow"]
    fresh.close()


def test_reconcile_notices_files_added_changed_and_removed_outside(gallery, tmp_path):
    store, index, paths = gallery
    paths[0].unlink()
    outside = store.root / "2000-01-01"
    outside.mkdir()
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters", "dropped in by hand\nSteps: 5, Sampler: Euler, CFG scale: 3, Seed: 9, Size: 8x8"
    )
    Image.new("RGB", (8, 8)).save(outside / "other.png", pnginfo=info)
    Image.new("RGB", (8, 8)).save(outside / "plain.png")
    (outside / "not-really.png").write_text("garbage")
    (outside / ".ldm-123.part").write_bytes(b"partial")
    # A file rewritten in place (new mtime) is read again.
    Image.new("RGB", (16, 16)).save(paths[1])
    os.utime(paths[1], ns=(time.time_ns(), time.time_ns() + 10**9))

    report = index.reconcile()
    assert (report.added, report.updated, report.removed, report.unreadable) == (2, 1, 1, 1)
    on_disk = {str(p.resolve()) for p in store.root.rglob("*.png") if p.name != "not-really.png"}
    assert index.paths() == on_disk
    assert index.entry_by_path(paths[1]).prompt == ""  # rewritten without metadata
    assert prompts_of(index, GalleryQuery(text="dropped hand")) == ["dropped in by hand"]
    assert index.reconcile() == type(report)()  # nothing left to do


def test_import_folder_reads_other_tools_and_plain_images(tmp_path):
    folder = tmp_path / "from-comfy"
    folder.mkdir()
    graph = {
        "3": {"class_type": "KSampler", "inputs": {"seed": 5, "positive": ["6", 0], "negative": ["6", 0]}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "neon city at night"}},
    }
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(graph))
    Image.new("RGB", (8, 8)).save(folder / "ComfyUI_00001_.png", pnginfo=info)
    Image.new("RGB", (8, 8)).save(folder / "photo.png")
    index = GalleryIndex()
    report = index.import_folder(folder)
    assert report.added == 2
    assert prompts_of(index, GalleryQuery(text="neon")) == ["neon city at night"]
    assert index.entry_by_path(folder / "photo.png").source is None
    assert folder.resolve() in index.roots()
    # Removing a file in the imported folder is noticed by the next start-up reconcile.
    (folder / "photo.png").unlink()
    assert index.reconcile().removed == 1
    index.close()


def test_rebuild_from_files_alone_matches_incremental_index(gallery, tmp_path):
    store, index, _ = gallery
    before = {
        e.path: (e.prompt, e.seed, e.model, e.created) for e in index.entries(index.search_ids()).values()
    }
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(index.db_path, copy)
    index.rebuild()
    after = {
        e.path: (e.prompt, e.seed, e.model, e.created) for e in index.entries(index.search_ids()).values()
    }
    assert after == before


def test_corrupt_index_file_is_set_aside_and_rebuilt(gallery):
    store, index, paths = gallery
    db_path = index.db_path
    index.close()
    for suffix in ("-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    db_path.write_bytes(b"this is not a database" * 100)
    fresh = GalleryIndex(db_path)
    assert fresh.count() == 0
    assert list(db_path.parent.glob(f"{db_path.name}.corrupt-*"))
    fresh.add_root(store.root)
    assert fresh.reconcile().added == len(paths)
    fresh.close()
