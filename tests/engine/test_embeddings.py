"""Textual-inversion files: every layout read into the prompt toolkit's Embedding, fit checks, hash, scan."""

from __future__ import annotations

import hashlib

import pytest
import torch

from ldm_studio.engine.catalog import EMBEDDING
from ldm_studio.engine.embeddings import (
    EmbeddingError,
    check_fits,
    embedding_info,
    read_embedding,
    scan_embeddings,
    ti_sha256,
)
from ldm_studio.engine.lora import HashCache
from ldm_studio.engine.prompts import Embedding
from tests.engine.lora_factory import CreatesFile, save_safetensors


def vectors(count: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, width, generator=torch.Generator().manual_seed(seed))


def a1111_pt(path, tensor: torch.Tensor):
    torch.save(
        {
            "string_to_token": {"*": 265},
            "string_to_param": {"*": tensor},
            "name": "badhands",
            "step": 1500,
            "sd_checkpoint": "abcdef12",
            "sd_checkpoint_name": "v1-5",
        },
        path,
    )
    return path


def test_a1111_pt_embedding(tmp_path):
    tensor = vectors(3, 768)
    read = read_embedding(a1111_pt(tmp_path / "bad-hands.pt", tensor))
    assert isinstance(read.embedding, Embedding) and read.name == "bad-hands"
    assert read.embedding.num_vectors == 3 and torch.equal(read.embedding.vectors_for("default"), tensor)
    assert (read.token, read.step, read.family, read.widths) == ("badhands", 1500, "sd1", (768,))


def test_safetensors_emb_params_and_diffusers_learned_embeds(tmp_path):
    tensor = vectors(2, 1024, seed=1)
    read = read_embedding(save_safetensors({"emb_params": tensor}, tmp_path / "style.safetensors"))
    assert torch.equal(read.embedding.vectors["default"], tensor) and read.family == "sd2"
    single = vectors(1, 768, seed=2)[0]
    torch.save({"<cat-toy>": single}, tmp_path / "learned_embeds.bin")
    read = read_embedding(tmp_path / "learned_embeds.bin")
    assert read.token == "<cat-toy>" and read.embedding.vectors["default"].shape == (1, 768)
    assert torch.equal(read.embedding.vectors["default"][0], single)


def test_sdxl_embedding_has_both_encoders(tmp_path):
    clip_l, clip_g = vectors(4, 768, seed=3), vectors(4, 1280, seed=4)
    read = read_embedding(save_safetensors({"clip_l": clip_l, "clip_g": clip_g}, tmp_path / "xl.safetensors"))
    assert read.family == "sdxl" and read.widths == (768, 1280) and read.embedding.num_vectors == 4
    assert torch.equal(read.embedding.vectors_for("clip_g"), clip_g)
    check_fits(read.embedding, (768, 1280))
    with pytest.raises(
        EmbeddingError, match=r"xl \(768 \+ 1280 wide, Stable Diffusion XL\) does not fit .* 768 wide"
    ):
        check_fits(read.embedding, (768,))


def test_fit_check_names_both_widths(tmp_path):
    embedding = read_embedding(
        save_safetensors({"emb_params": vectors(2, 1024)}, tmp_path / "sd2.safetensors")
    ).embedding
    check_fits(embedding, (1024,))
    with pytest.raises(
        EmbeddingError, match=r"sd2 \(1024 wide, Stable Diffusion 2.x\) .* encoder is 768 wide"
    ):
        check_fits(embedding, (768,))
    with pytest.raises(EmbeddingError, match="encoders are 768 \\+ 1280 wide"):
        check_fits(embedding, (768, 1280))


def test_files_that_are_not_embeddings_are_refused_in_words(tmp_path):
    torch.save({"string_to_param": {"*": vectors(1, 8), "#": vectors(1, 8)}}, tmp_path / "two.pt")
    with pytest.raises(EmbeddingError, match="two.pt holds 2 terms"):
        read_embedding(tmp_path / "two.pt")
    save_safetensors({"a": vectors(1, 8), "b": vectors(1, 8)}, tmp_path / "lora.safetensors")
    with pytest.raises(EmbeddingError, match="not a textual-inversion embedding LDM Studio knows"):
        read_embedding(tmp_path / "lora.safetensors")


@pytest.mark.parametrize("zip_format", [True, False])
def test_malicious_embedding_pickle_runs_nothing(tmp_path, zip_format):
    target = tmp_path / "pwned"
    payload = {"string_to_param": {"*": vectors(1, 768)}, "trap": CreatesFile(target)}
    torch.save(payload, tmp_path / "evil.pt", _use_new_zipfile_serialization=zip_format)
    assert not target.exists()
    with pytest.raises(EmbeddingError, match="evil.pt was refused"):
        read_embedding(tmp_path / "evil.pt")
    assert not target.exists()


def test_ti_hash_is_sha256_of_the_whole_file(tmp_path):
    path = save_safetensors({"emb_params": vectors(2, 768)}, tmp_path / "e.safetensors", {"note": "x"})
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    assert ti_sha256(path) == expected
    cache = HashCache(tmp_path / "h.json")
    info = embedding_info(path, cache, compute_hash=True)
    assert (
        info.hash == expected[:12]
        and embedding_info(path, HashCache(tmp_path / "h.json")).hash == expected[:12]
    )


def test_scan_embeddings_from_the_data_folder(tmp_path):
    folder = EMBEDDING.default_folder()
    folder.mkdir(parents=True)
    a1111_pt(folder / "Hands.pt", vectors(2, 768))
    save_safetensors(
        {"clip_l": vectors(1, 768), "clip_g": vectors(1, 1280)}, folder / "xl" / "style.safetensors"
    )
    (folder / "style.png").write_bytes(b"\x89PNG")
    (folder / "xl" / "style.preview.png").write_bytes(b"\x89PNG")
    (folder / "empty.bin").write_bytes(b"")
    scanned = scan_embeddings()
    assert [info.name for info in scanned] == ["empty", "Hands", "style"]
    infos = {info.name: info for info in scanned}
    assert (infos["Hands"].vector_count, infos["Hands"].family, infos["Hands"].fits((768,))) == (
        2,
        "sd1",
        True,
    )
    assert infos["style"].family == "sdxl" and infos["style"].preview == folder / "xl" / "style.preview.png"
    assert not infos["style"].fits((768,)) and infos["style"].fits((768, 1280))
    assert "empty" in infos["empty"].error
