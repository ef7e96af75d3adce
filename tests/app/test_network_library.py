"""The LoRA / embedding library model: background scans, added folders, A1111 hashes for reuse."""

from __future__ import annotations

import pytest

from ldm_studio.app.network_library import NetworkLibraryModel
from ldm_studio.engine import catalog
from ldm_studio.gallery.networks import NetworkRef
from ldm_studio.paths import user_dirs
from tests.app.network_files import a1111_embedding_hash, a1111_lora_hash, write_embedding, write_lora


@pytest.fixture
def library(qtbot, monkeypatch):
    """The user's folders only: the example LoRA shipped in resources/ has its own test."""
    monkeypatch.setattr(catalog, "bundled_folder", lambda kind: None)
    model = NetworkLibraryModel()
    yield model
    model.shutdown()


def scan(qtbot, library: NetworkLibraryModel) -> list:
    with qtbot.waitSignal(library.entriesChanged, timeout=20000) as done:
        library.refresh()
    return done.args[0]


def test_the_data_folders_are_scanned_in_the_background_with_what_the_picker_shows(qtbot, library):
    data = user_dirs().data
    write_lora(
        data / "loras" / "styles" / "fox_style.safetensors", tags={"fox": 9, "orange fur": 4}, preview=True
    )
    write_lora(data / "loras" / "xl_thing.safetensors", family="sdxl", rank=8)
    write_embedding(data / "embeddings" / "bad-hands.safetensors", vectors=3)
    entries = scan(qtbot, library)
    by_name = {entry.name: entry for entry in entries}
    assert [entry.kind for entry in entries] == ["lora", "lora", "embedding"]
    fox = by_name["fox_style"]
    assert (fox.family, fox.network_type, fox.rank) == ("sd1", "LoRA", 4)
    assert fox.words == ("fox", "orange fur") and fox.preview.name == "fox_style.png"
    assert fox.details.startswith("SD 1.x · LoRA · rank 4 · ")
    assert by_name["xl_thing"].incompatibility("sd1") == "Made for SDXL; the loaded model is SD 1.x"
    assert fox.incompatibility("sd1") == "" and fox.incompatibility("") == ""
    hands = by_name["bad-hands"]
    assert (hands.family, hands.vector_count, hands.details.split(" · ")[1]) == ("sd1", 3, "3 tokens")
    assert library.entries == entries


def test_an_added_folder_is_remembered_and_scanned(qtbot, library, tmp_path):
    a1111 = tmp_path / "stable-diffusion-webui" / "models" / "Lora"
    write_lora(a1111 / "mine.safetensors")
    with qtbot.waitSignal(library.entriesChanged, timeout=20000) as done:
        assert library.add_folder(a1111, "lora")
    assert [entry.name for entry in done.args[0]] == ["mine"]
    assert a1111.resolve() in library.folders("lora")
    with qtbot.waitSignal(library.failed, timeout=2000) as failed:
        assert not library.add_folder(tmp_path / "nowhere", "embedding")
    assert "is not a folder" in failed.args[0]


def test_hashes_are_a1111s_and_found_by_a_reuse(qtbot, library):
    data = user_dirs().data
    lora = write_lora(data / "loras" / "renamed_fox.safetensors", seed=3)
    embedding = write_embedding(data / "embeddings" / "hands_v2.safetensors", seed=4)
    entries = scan(qtbot, library)
    assert [library.hash_of(entry)[:12] for entry in entries] == [
        a1111_lora_hash(lora),
        a1111_embedding_hash(embedding),
    ]
    wanted = (
        NetworkRef("fox_style", "lora", a1111_lora_hash(lora)),
        NetworkRef("bad-hands", "embedding", a1111_embedding_hash(embedding)),
        NetworkRef("gone", "lora", "0123456789ab"),
    )
    with qtbot.waitSignal(library.resolved, timeout=20000) as done:
        library.resolve(7, "<lora:fox_style:0.6>, <lora:gone:1>", "bad-hands", wanted)
    ticket, result = done.args
    assert ticket == 7
    assert result.prompt == "<lora:renamed_fox:0.6>, <lora:gone:1>"
    assert result.negative_prompt == "hands_v2"
    assert result.message == "Not in your library: gone (LoRA) — the rest was reused."


def test_a_reuse_before_any_scan_scans_first(qtbot, library):
    write_lora(user_dirs().data / "loras" / "fox_style.safetensors")
    with qtbot.waitSignal(library.resolved, timeout=20000) as done:
        library.resolve(1, "<lora:fox_style:1>", "", (NetworkRef("fox_style"),))
    assert done.args[1].missing == ()


def test_the_shipped_example_lora_is_listed_for_the_bundled_model(qtbot):
    library = NetworkLibraryModel()
    try:
        example = next(entry for entry in scan(qtbot, library) if entry.name == "openmoji-style")
    finally:
        library.shutdown()
    assert (example.kind, example.family, example.rank) == ("lora", "ldm-studio", 32)
    assert example.preview is not None and example.preview.name == "openmoji-style.preview.png"
    assert example.incompatibility("ldm-studio") == ""
    assert example.incompatibility("sd1") != ""
