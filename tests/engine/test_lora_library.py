"""The LoRA library: A1111's short hash, metadata, trigger words, previews, family, and the folder scan."""

from __future__ import annotations

import hashlib
import json
import struct

import torch

from ldm_studio.engine.catalog import LORA
from ldm_studio.engine.lora import (
    HashCache,
    lora_family,
    lora_from_tensors,
    lora_info,
    lora_sha256,
    scan_loras,
)
from ldm_studio.engine.lora.hashing import short_hash
from tests.engine.lora_factory import save_safetensors

LAYER = "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q"


def small_lora(rank: int = 4, seed: int = 0, width: int = 16) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {
        f"{LAYER}.lora_down.weight": torch.randn(rank, width, generator=generator),
        f"{LAYER}.lora_up.weight": torch.randn(width, rank, generator=generator),
        f"{LAYER}.alpha": torch.tensor(rank / 2),
    }


def expected_a1111_hash(path) -> str:
    """Written from A1111's rule, independently of the engine: skip 8 bytes + the header they announce."""
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + length :]).hexdigest()[:12]


def test_lora_hash_is_sha256_after_the_header_and_ignores_metadata_edits(tmp_path):
    path = save_safetensors(small_lora(), tmp_path / "a.safetensors", {"ss_output_name": "first"})
    digest = lora_sha256(path)
    assert short_hash(digest) == expected_a1111_hash(path)
    assert short_hash(digest) != hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    edited = save_safetensors(
        small_lora(), tmp_path / "b.safetensors", {"ss_output_name": "a much longer name"}
    )
    assert edited.read_bytes() != path.read_bytes() and lora_sha256(edited) == digest


def test_kohyas_stored_hash_wins_and_pickles_hash_the_whole_file(tmp_path):
    stored = "ab" * 32
    path = save_safetensors(small_lora(), tmp_path / "s.safetensors", {"sshs_model_hash": stored})
    assert lora_info(path).hash == "ab" * 6
    pickle = tmp_path / "p.pt"
    torch.save(small_lora(), pickle)
    assert lora_sha256(pickle) == hashlib.sha256(pickle.read_bytes()).hexdigest()


def test_hash_cache_is_kept_by_path_size_and_mtime(tmp_path):
    path = save_safetensors(small_lora(), tmp_path / "a.safetensors")
    cache_file = tmp_path / "cache" / "hashes.json"
    cache = HashCache(cache_file)
    assert cache.lookup("lora", path) == ""
    digest = lora_sha256(path, cache=cache)
    assert HashCache(cache_file).lookup("lora", path) == digest  # persisted
    save_safetensors(small_lora(seed=1), path)
    assert HashCache(cache_file).lookup("lora", path) == ""  # the file changed: hash again


def test_metadata_family_rank_type_trigger_words_and_preview(tmp_path):
    tags = {"10_cat": {"orange cat": 30, " solo": 12, "grass": 5}, "5_more": {"solo": 20}}
    metadata = {
        "ss_tag_frequency": json.dumps(tags),
        "ss_output_name": "catstyle",
        "ss_base_model_version": "sd_v1",
        "ss_sd_model_name": "v1-5-pruned.safetensors",
    }
    path = save_safetensors(small_lora(rank=8, width=16), tmp_path / "cat.safetensors", metadata)
    (tmp_path / "cat.preview.png").write_bytes(b"\x89PNG")
    info = lora_info(path)
    assert (info.name, info.family, info.network_type, info.rank, info.alpha) == (
        "cat",
        "sd1",
        "LoRA",
        8,
        4.0,
    )
    assert info.top_tags[:2] == ("solo", "orange cat") and info.trigger_words == ()
    assert (info.output_name, info.base_model) == ("catstyle", "v1-5-pruned.safetensors")
    assert info.preview == tmp_path / "cat.preview.png" and info.layers == {"UNet": 1}
    assert info.error == "" and info.sha256 == ""  # hashing is lazy
    (tmp_path / "cat.json").write_text(json.dumps({"activation text": "orangecat, by foo"}), encoding="utf-8")
    assert lora_info(path).trigger_words == ("orangecat", "by foo")
    trained = save_safetensors(small_lora(), tmp_path / "ours.safetensors", {"ss_trigger_word": "sks emoji"})
    assert lora_info(trained).trigger_words == ("sks emoji",)
    assert info.with_hash().hash == expected_a1111_hash(path)


def test_family_is_read_from_shapes_before_metadata():
    sdxl_shapes = {
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight": torch.zeros(4, 1280),
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight": torch.zeros(1280, 4),
    }
    assert lora_family(lora_from_tensors(sdxl_shapes, "x", {"ss_base_model_version": "sd_v1"})) == "sdxl"
    key = "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k"
    sd2 = {f"{key}.lora_down.weight": torch.zeros(4, 1024), f"{key}.lora_up.weight": torch.zeros(1280, 4)}
    assert lora_family(lora_from_tensors(sd2, "y")) == "sd2"
    assert (
        lora_family(
            lora_from_tensors(
                small_lora(), "z", {"modelspec.architecture": "stable-diffusion-xl-v1-base/lora"}
            )
        )
        == "sdxl"
    )


def test_scan_lists_every_lora_with_errors_in_words_and_uses_the_data_folder(tmp_path):
    folder = LORA.default_folder()
    folder.mkdir(parents=True)
    save_safetensors(small_lora(), folder / "Zeta.safetensors")
    save_safetensors(small_lora(seed=2), folder / "sub" / "alpha.safetensors")
    (folder / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    dora = small_lora() | {f"{LAYER}.dora_scale": torch.zeros(16)}
    save_safetensors(dora, folder / "dora.safetensors")
    extra = tmp_path / "mine"
    save_safetensors(small_lora(seed=3), extra / "mine.safetensors")
    (folder / "notes.txt").write_text("not a lora", encoding="utf-8")
    infos = scan_loras([folder, extra, folder])
    assert [info.name for info in infos] == ["alpha", "broken", "dora", "mine", "Zeta"]
    errors = {info.name: info.error for info in infos}
    assert "not a valid safetensors file" in errors["broken"] and "DoRA" in errors["dora"]
    assert errors["alpha"] == errors["mine"] == errors["Zeta"] == ""
    # the default folders: the data folder, then the example shipped in resources/loras
    assert [info.name for info in scan_loras()] == ["alpha", "broken", "dora", "openmoji-style", "Zeta"]
    cache = HashCache(tmp_path / "h.json")
    hashed = {info.name: info.hash for info in scan_loras([extra], hash_cache=cache, compute_hashes=True)}
    assert hashed == {"mine": expected_a1111_hash(extra / "mine.safetensors")}
    assert scan_loras([extra], hash_cache=cache)[0].hash == hashed["mine"]  # from the cache, not recomputed
