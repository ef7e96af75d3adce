"""The model catalogue: one list of suffixes, one scanner, one family table, one hash, one size format."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from ldm_studio.app import catalog as app_catalog
from ldm_studio.cli import main as cli_main
from ldm_studio.engine import catalog, images
from ldm_studio.engine.catalog import (
    CHECKPOINT_SUFFIXES,
    FAMILIES,
    LORA,
    TINY_AUTOENCODER,
    family_label,
    family_short_label,
    file_sha256,
    find_models,
    human_size,
)
from ldm_studio.engine.checkpoints import FAMILY_LABELS, inspect_model
from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.library import ModelLibrary, short_hash, user_model_folders
from ldm_studio.paths import user_dirs
from tests.engine.checkpoint_factory import single_file, tiny


@pytest.fixture
def every_suffix(tmp_path) -> Path:
    """The same tiny SD 1.x checkpoint under every name the catalogue accepts, plus files it must not."""
    folder = tmp_path / "models"
    folder.mkdir()
    for suffix in CHECKPOINT_SUFFIXES:
        source = single_file("sd1") if suffix == ".safetensors" else single_file("sd1", ".ckpt")
        shutil.copyfile(source, folder / f"model{suffix.replace('.', '-')}{suffix}")
    shutil.copyfile(single_file("sd1"), folder / "SHOUTING.SafeTensors")
    (folder / "model.yaml").write_text("model: {}\n")
    (folder / "notes.txt").write_text("not a model")
    return folder


def test_every_checkpoint_suffix_is_listed_read_and_loaded_alike(every_suffix, tmp_path):
    expected = len(CHECKPOINT_SUFFIXES) + 1
    entries = ModelLibrary([every_suffix], tmp_path / "cache.json").scan(with_hashes=False)
    assert len(entries) == expected
    assert all(entry.loadable and entry.family == "sd1" for entry in entries), entries
    # the window's quick list sees exactly what the library describes, in the same order
    quick = app_catalog.discover([every_suffix])
    assert [entry.path for entry in quick if not entry.bundled] == [entry.path for entry in entries]

    from ldm_studio.engine.loader import load_model

    loaded = load_model(every_suffix / "model-bin.bin", device="cpu")  # the rarest name still loads
    assert loaded.family == "sd1"
    with pytest.raises(ModelLoadError, match="is not a model"):
        load_model(every_suffix / "model.yaml", device="cpu")


def test_the_scanner_skips_hidden_files_and_the_insides_of_model_folders(tmp_path):
    root = tmp_path / "models"
    diffusers = shutil.copytree(tiny("sd1").folder, root / "a" / "diffusers-sd1")
    assert list((diffusers / "unet").glob("*.safetensors"))  # weights inside that are not models
    (root / ".cache").mkdir()
    (root / ".cache" / "partial.safetensors").write_bytes(b"")
    (root / "b.ckpt").write_bytes(b"")
    os.symlink(root, root / "a" / "loop")  # a folder that contains itself must not hang the scan
    assert find_models(root) == [diffusers, root / "b.ckpt"]
    assert app_catalog.scan_folder(root) == find_models(root)


def test_other_kinds_are_found_in_their_own_folders(tmp_path):
    loras = LORA.default_folder()
    assert loras == user_dirs().data / "loras"
    (loras / "styles").mkdir(parents=True)
    for name in ("fox.safetensors", "styles/ink.pt", "upscaler.pth", "readme.txt"):
        (loras / name).write_bytes(b"")
    assert find_models(loras, LORA) == [loras / "fox.safetensors", loras / "styles" / "ink.pt"]

    taesd = TINY_AUTOENCODER.default_folder()
    (taesd / "taesdxl").mkdir(parents=True)
    (taesd / "taesdxl" / "config.json").write_text("{}")
    (taesd / "taesdxl" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    (taesd / "taesd_decoder.pth").write_bytes(b"")
    assert find_models(taesd, TINY_AUTOENCODER) == [taesd / "taesd_decoder.pth", taesd / "taesdxl"]

    extra = tmp_path / "a1111" / "models" / "Lora"
    extra.mkdir(parents=True)
    catalog.add_folder(extra, LORA)
    shipped = [catalog.bundled_folder(LORA)] if catalog.bundled_folder(LORA) else []
    assert catalog.library_folders(LORA) == [loras, extra.resolve(), *shipped]  # examples last
    assert user_model_folders() == []  # each kind keeps its own folders
    assert catalog.remove_folder(extra, LORA) == []


def test_one_family_table_names_and_labels_what_inspection_finds():
    assert FAMILY_LABELS is catalog.FAMILY_LABELS
    for kind in ("sd1", "sd2", "sdxl"):
        info = inspect_model(single_file(kind))
        assert info.family == kind and info.family in FAMILIES
        assert info.family_label == family_label(kind) == FAMILIES[kind].label
    assert (family_short_label("sd1"), family_short_label("sdxl")) == ("SD 1.x", "SDXL")
    assert family_label("something-new") == "something-new"  # unknown names pass through


@pytest.mark.parametrize("kind", ["sd1", "sd2"])
def test_the_loader_names_a_folder_s_family_as_the_library_does_even_with_a_damaged_unet_config(
    kind, tmp_path
):
    from ldm_studio.engine.loader import _folder_family

    folder = shutil.copytree(tiny(kind).folder, tmp_path / kind)
    entry = ModelLibrary([tmp_path], tmp_path / "cache.json").scan(with_hashes=False)[0]
    assert _folder_family(folder) == entry.family == kind
    (folder / "unet" / "config.json").write_text("{ damaged")
    with pytest.raises(ModelLoadError):
        inspect_model(folder)
    assert _folder_family(folder) == kind  # the same detector from what is left, never a vague "sd"


def test_the_hash_is_a1111_autov2(tmp_path):
    known = tmp_path / "abc.safetensors"
    known.write_bytes(b"abc")
    # SHA-256("abc") is the FIPS 180-2 test vector ba7816bf8f01cfea...; AutoV2 keeps 10 hex digits
    assert file_sha256(known).startswith("ba7816bf8f01cfea414140de5dae2223")
    assert catalog.autov2(file_sha256(known)) == "ba7816bf8f"
    assert short_hash(known, tmp_path / "cache.json") == "ba7816bf8f"
    assert images.file_sha256 is file_sha256  # the gallery's source-image hashes are the same function
    assert len(LORA.short_hash(file_sha256(known))) == 12  # A1111's "Lora hashes"


def test_hashing_reads_big_files_in_chunks_and_can_stop(tmp_path):
    data = os.urandom(catalog.CHUNK_BYTES + 12345)
    big = tmp_path / "big.ckpt"
    big.write_bytes(data)
    assert file_sha256(big) == hashlib.sha256(data).hexdigest()
    with pytest.raises(InterruptedError):
        file_sha256(big, should_stop=lambda: True)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.00 kB"),
        (1234, "1.23 kB"),
        (99_960, "100 kB"),
        (999_960, "1.00 MB"),  # rounds up into the next unit, never "1000 kB"
        (2_132_625_894, "2.13 GB"),  # SD 1.5 fp16, as model hubs list it
        (6_938_040_682, "6.94 GB"),  # SDXL base fp16
        (12_345_678_901_234, "12.3 TB"),
    ],
)
def test_sizes_are_shown_in_decimal_units_everywhere(size, text):
    from ldm_studio.app import backend

    assert human_size(size) == text
    assert backend.human_size(size) == text  # what the model panel shows


def test_the_models_command_shows_sizes_in_the_catalogue_s_units(capsys):
    dirs = user_dirs()
    dirs.models.mkdir(parents=True)
    model = shutil.copyfile(single_file("sd1"), dirs.models / "first.safetensors")
    assert cli_main(["models", "--no-hash"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("first"))
    assert f"  {human_size(model.stat().st_size)}  " in line
