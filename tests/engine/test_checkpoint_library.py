"""The model library: finding models, AutoV2 hashes cached by path/size/mtime, user folders."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from ldm_studio.engine import library
from ldm_studio.engine.checkpoints import set_model_settings
from ldm_studio.engine.library import ModelLibrary, short_hash
from ldm_studio.paths import user_dirs
from tests.engine.checkpoint_factory import single_file, tiny


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def models_folder(tmp_path) -> Path:
    folder = tmp_path / "models"
    (folder / "nested").mkdir(parents=True)
    shutil.copyfile(single_file("sd1"), folder / "sd1-model.safetensors")
    shutil.copyfile(single_file("sd1", ".ckpt"), folder / "nested" / "old.ckpt")
    shutil.copytree(tiny("sd1").folder, folder / "nested" / "diffusers-sd1")
    (folder / "broken.safetensors").write_bytes(b"\x00" * 5)
    (folder / "readme.txt").write_text("not a model")
    (folder / ".hidden.safetensors").write_bytes(b"")
    return folder


def counting_hash(monkeypatch) -> list[Path]:
    calls: list[Path] = []
    original = library.file_sha256

    def counted(path, should_stop=None):
        calls.append(path)
        return original(path, should_stop)

    monkeypatch.setattr(library, "file_sha256", counted)
    return calls


def test_scan_lists_models_with_family_type_size_and_autov2_hash(models_folder, tmp_path):
    entries = {e.name: e for e in ModelLibrary([models_folder], tmp_path / "cache.json").scan()}
    assert set(entries) == {"sd1-model", "old", "diffusers-sd1", "broken"}
    model = entries["sd1-model"]
    assert (model.family, model.file_type, model.loadable) == ("sd1", "safetensors", True)
    assert model.size == (models_folder / "sd1-model.safetensors").stat().st_size
    assert model.short_hash == sha256(models_folder / "sd1-model.safetensors")[:10]
    assert (entries["old"].file_type, entries["old"].family) == ("ckpt", "sd1")
    assert entries["old"].short_hash == sha256(models_folder / "nested" / "old.ckpt")[:10]
    assert (entries["diffusers-sd1"].file_type, entries["diffusers-sd1"].family) == ("diffusers", "sd1")
    assert len(entries["diffusers-sd1"].short_hash) == 10
    broken = entries["broken"]
    assert (broken.family, broken.loadable, broken.short_hash) == ("unreadable", False, "")
    assert "too short" in broken.reason


def test_big_files_are_hashed_once(models_folder, tmp_path, monkeypatch):
    calls = counting_hash(monkeypatch)
    cache = tmp_path / "cache.json"
    ModelLibrary([models_folder], cache).scan()
    first = len(calls)
    assert first >= 2
    ModelLibrary([models_folder], cache).scan()  # a new process would read the same cache
    assert len(calls) == first
    assert (
        short_hash(models_folder / "sd1-model.safetensors", cache)
        == sha256(models_folder / "sd1-model.safetensors")[:10]
    )
    assert len(calls) == first

    changed = models_folder / "sd1-model.safetensors"
    with changed.open("ab") as stream:
        stream.write(b"\0")  # size and mtime change: hashed again, and only this file
    os.utime(changed, ns=(1, 1))
    entries = {e.name: e for e in ModelLibrary([models_folder], cache).scan()}
    assert calls[first:] == [changed]
    assert entries["sd1-model"].short_hash == sha256(changed)[:10]


def test_folder_hash_depends_on_content_not_location(tmp_path):
    cache = tmp_path / "cache.json"
    first = shutil.copytree(tiny("sd1").folder, tmp_path / "a")
    second = shutil.copytree(tiny("sd1").folder, tmp_path / "b")
    assert short_hash(first, cache) == short_hash(second, cache)
    config = second / "scheduler" / "scheduler_config.json"
    config.write_text(config.read_text().replace('"steps_offset": 1', '"steps_offset": 0'))
    assert short_hash(first, cache) != short_hash(second, cache)


def test_scan_can_stop_and_reports_each_entry(models_folder, tmp_path):
    seen = []
    lib = ModelLibrary([models_folder], tmp_path / "cache.json")
    entries = lib.scan(with_hashes=False, on_entry=seen.append)
    assert seen == entries and all(e.short_hash == "" for e in entries)
    assert lib.scan(should_stop=lambda: True) == []


def test_default_library_has_the_models_folder_added_folders_and_bundled_models(models_folder, tmp_path):
    dirs = user_dirs()
    assert str(dirs.models).startswith(os.environ["LDM_STUDIO_HOME"])
    dirs.models.mkdir(parents=True)
    shutil.copyfile(single_file("sdxl"), dirs.models / "xl.safetensors")
    assert library.user_model_folders() == []
    library.add_model_folder(models_folder)
    library.add_model_folder(models_folder)  # no duplicates
    assert library.user_model_folders() == [models_folder.resolve()]

    default = ModelLibrary.default()
    assert default.folders[:2] == [dirs.models, models_folder.resolve()]
    names = {e.name: e for e in default.scan(with_hashes=False)}
    assert names["xl"].family == "sdxl" and "sd1-model" in names
    library.remove_model_folder(models_folder)
    assert library.user_model_folders() == []


def test_bundled_models_are_marked(tmp_path):
    bundled = tmp_path / "bundled"
    shutil.copytree(tiny("sd1-pruned").folder, bundled / "tiny-pruned")
    entries = ModelLibrary([tmp_path / "nothing-here"], tmp_path / "c.json", bundled_dir=bundled).scan()
    assert [(e.name, e.bundled, e.family) for e in entries] == [("tiny-pruned", True, "sd1")]


def test_saved_prediction_choice_shows_in_the_library_and_can_be_cleared(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    path = folder / "anything.safetensors"
    shutil.copyfile(single_file("sd2"), path)
    cache = tmp_path / "cache.json"
    assert ModelLibrary([folder], cache).scan()[0].prediction_type == "v_prediction"  # SD 2.x default
    set_model_settings(path, prediction_type="epsilon")
    assert ModelLibrary([folder], cache).scan()[0].prediction_type == "epsilon"
    set_model_settings(path, prediction_type=None)
    assert ModelLibrary([folder], cache).scan()[0].prediction_type == "v_prediction"


def test_unreadable_cache_is_ignored(models_folder, tmp_path):
    cache = tmp_path / "cache.json"
    cache.write_text("{ not json")
    entries = ModelLibrary([models_folder], cache).scan(with_hashes=False)
    assert len(entries) == 4
