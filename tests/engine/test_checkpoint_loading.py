"""Single-file checkpoints of every family load offline and give the same images as their folders."""

from __future__ import annotations

import json
import shutil
import socket

import numpy as np
import pytest
import torch

from ldm_studio.engine.checkpoints import (
    convert_ckpt_to_safetensors,
    get_model_settings,
    inspect_model,
    load_single_file,
    set_model_settings,
)
from ldm_studio.engine.checkpoints.inspect import NO_VAE_REASON
from ldm_studio.engine.errors import ModelLoadError
from tests.engine.checkpoint_factory import KINDS, generate, original_state_dict, single_file, tiny

MAX_DIFFERENCE = 1e-4
UNET_KEYS = (
    "block_out_channels",
    "layers_per_block",
    "down_block_types",
    "up_block_types",
    "mid_block_type",
    "cross_attention_dim",
    "use_linear_projection",
    "attention_head_dim",
    "addition_time_embed_dim",
    "projection_class_embeddings_input_dim",
    "upcast_attention",
    "sample_size",
)


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection is recorded and fails."""
    attempts = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("network access attempted in an offline test")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def load_folder(kind: str):
    import diffusers

    folder = tiny(kind).folder
    class_name = json.loads((folder / "model_index.json").read_text())["_class_name"]
    pipe = getattr(diffusers, class_name).from_pretrained(folder, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("kind", KINDS)
def test_single_file_loads_offline_and_matches_the_folder(kind, no_network):
    path = single_file(kind)
    info = inspect_model(path)
    assert info.loadable, info.reason
    assert info.family == tiny(kind).family
    assert info.prediction_type == tiny(kind).prediction_type

    from_file = load_single_file(path, torch_dtype=torch.float32)
    from_file.set_progress_bar_config(disable=True)
    from_folder = load_folder(kind)
    assert no_network == []

    assert type(from_file) is type(from_folder)
    for key in UNET_KEYS:
        assert from_file.unet.config.get(key) == from_folder.unet.config.get(key), key
    assert dict(from_file.scheduler.config) == dict(from_folder.scheduler.config)
    assert from_file.tokenizer.pad_token == from_folder.tokenizer.pad_token
    images_file, images_folder = generate(from_file), generate(from_folder)
    assert images_file.std() > 0.01  # a real image, not a constant
    assert np.abs(images_file - images_folder).max() <= MAX_DIFFERENCE
    # and the comparison can fail: another seed is far away
    assert np.abs(generate(from_file, seed=1) - images_folder).max() > 0.01


@pytest.mark.parametrize("kind", KINDS)
def test_file_and_folder_report_the_same_architecture(kind):
    from_file, from_folder = inspect_model(single_file(kind)), inspect_model(tiny(kind).folder)
    assert (from_folder.family, from_folder.file_type) == (from_file.family, "diffusers")
    assert from_file.unet == from_folder.unet
    assert from_file.prediction_type == from_folder.prediction_type
    assert from_file.parameter_count - from_folder.parameter_count == (
        # SD 2.x files carry the final OpenCLIP block the model never runs (and its projection)
        sum(v.numel() for k, v in original_state_dict(tiny(kind).pipe, kind).items() if "resblocks.2." in k)
        + 32 * 32
        if tiny(kind).family == "sd2"
        else 0
    )


def test_inferred_dimensions_of_a_pruned_model():
    info = inspect_model(single_file("sd1-pruned"))
    unet = info.unet
    assert unet.block_out_channels == (32, 64, 64)
    assert unet.layers_per_block == 1
    assert unet.has_mid_block is False
    assert unet.down_attention == (True, True, True)
    assert unet.context_dim == 32
    assert unet.attention_heads == (8, 8, 8)  # SD 1.x convention: shapes cannot tell
    assert [e.hidden_size for e in info.text_encoders] == [32]
    assert info.vae.block_out_channels == (32, 64)
    assert info.parameters["unet"] == sum(p.numel() for p in tiny("sd1-pruned").pipe.unet.parameters())


def test_sdxl_dimensions_and_two_text_encoders():
    info = inspect_model(single_file("sdxl"))
    assert info.family == "sdxl" and info.native_size == 1024
    assert [e.kind for e in info.text_encoders] == ["clip", "open_clip"]
    assert info.unet.transformer_depth == (1, 1, 2)
    assert info.unet.addition_embed_dim == 48 + 6 * 8  # pooled text width + six embedded size numbers
    pipe = tiny("sdxl").pipe
    assert info.parameters["text_encoder_2"] == sum(p.numel() for p in pipe.text_encoder_2.parameters())


def test_ckpt_with_numpy_metadata_loads_and_converts(tmp_path, no_network):
    ckpt = single_file("sd1", ".ckpt", numpy_metadata=True)
    info = inspect_model(ckpt)
    assert info.file_type == "ckpt" and info.loadable
    reference = generate(load_folder("sd1"))
    from_ckpt = load_single_file(ckpt, torch_dtype=torch.float32)
    from_ckpt.set_progress_bar_config(disable=True)
    assert np.abs(generate(from_ckpt) - reference).max() <= MAX_DIFFERENCE

    converted = convert_ckpt_to_safetensors(ckpt, tmp_path / "converted.safetensors")
    assert inspect_model(converted).file_type == "safetensors"
    from_converted = load_single_file(converted, torch_dtype=torch.float32)
    from_converted.set_progress_bar_config(disable=True)
    assert np.abs(generate(from_converted) - reference).max() <= MAX_DIFFERENCE
    with pytest.raises(ModelLoadError, match="already exists"):
        convert_ckpt_to_safetensors(ckpt, converted)
    assert no_network == []


def test_prediction_type_comes_from_a_sidecar_yaml(tmp_path):
    path = tmp_path / "my-sd2-model.safetensors"
    shutil.copyfile(single_file("sd2"), path)
    (tmp_path / "my-sd2-model.yaml").write_text(
        'model:\n  params:\n    parameterization: "v"\n', encoding="utf-8"
    )
    info = inspect_model(path)
    assert (info.prediction_type, info.native_size) == ("v_prediction", 768)
    assert "my-sd2-model.yaml" in info.prediction_source
    (tmp_path / "my-sd2-model.yaml").write_text(
        "model:\n  params:\n    linear_start: 0.00085\n", encoding="utf-8"
    )
    assert inspect_model(path).prediction_type == "epsilon"


def test_prediction_type_from_the_file_name_and_family_default(tmp_path):
    assert inspect_model(single_file("sd2-v")).prediction_source == "a hint in the file name"
    assert inspect_model(single_file("sd2")).prediction_type == "epsilon"  # "512-base" in the name
    unnamed = tmp_path / "model.safetensors"
    shutil.copyfile(single_file("sd2"), unnamed)
    assert inspect_model(unnamed).prediction_type == "v_prediction"  # most SD 2.x files are 768-v
    assert inspect_model(single_file("sd1")).prediction_type == "epsilon"


@pytest.mark.parametrize(
    ("name", "family", "expected"),
    [
        ("v2-1_768-ema-pruned.safetensors", "sd2", "v_prediction"),
        ("v2-1_512-ema-pruned.ckpt", "sd2", "epsilon"),
        ("512-base-ema.ckpt", "sd2", "epsilon"),
        ("sd21-768-v.safetensors", "sd2", "v_prediction"),
        ("my-sd2-finetune.safetensors", "sd2", "v_prediction"),  # SD 2.x default
        ("noobai-xl-vpred-1.0.safetensors", "sdxl", "v_prediction"),
        ("juggernaut-xl-v9.safetensors", "sdxl", "epsilon"),
        ("dreamshaper-768-v.safetensors", "sd1", "epsilon"),  # 768/-v only mean v for SD 2.x
    ],
)
def test_file_name_hints(tmp_path, name, family, expected):
    from ldm_studio.engine.checkpoints.prediction import guess_prediction

    assert guess_prediction(tmp_path / name, family, None).prediction_type == expected


def test_prediction_type_from_file_metadata(tmp_path):
    from safetensors.torch import save_file

    state = original_state_dict(tiny("sd2").pipe, "sd2")
    path = tmp_path / "model.safetensors"
    save_file(state, str(path), metadata={"modelspec.architecture": "stable-diffusion-v2-512"})
    assert inspect_model(path).prediction_type == "v_prediction"  # no usable metadata: family default
    path.unlink()
    save_file(state, str(path), metadata={"modelspec.prediction_type": "epsilon"})
    assert (inspect_model(path).prediction_type, inspect_model(path).prediction_source) == (
        "epsilon",
        "the file's metadata",
    )


def test_saved_choice_wins_and_is_used_for_loading(tmp_path):
    path = tmp_path / "model.safetensors"
    shutil.copyfile(single_file("sd2"), path)
    assert inspect_model(path).prediction_type == "v_prediction"
    assert set_model_settings(path, prediction_type="epsilon") == {"prediction_type": "epsilon"}
    assert get_model_settings(path) == {"prediction_type": "epsilon"}
    info = inspect_model(path)
    assert (info.prediction_type, info.prediction_source) == ("epsilon", "your setting for this model")
    pipe = load_single_file(path, torch_dtype=torch.float32)
    assert pipe.scheduler.config.prediction_type == "epsilon"
    assert pipe.unet.config.sample_size == 64  # the 512 config, not 768-v's
    explicit = load_single_file(path, torch_dtype=torch.float32, prediction_type="v_prediction")
    assert explicit.scheduler.config.prediction_type == "v_prediction"
    assert explicit.unet.config.upcast_attention is True
    set_model_settings(path, prediction_type=None)
    assert get_model_settings(path) == {}
    with pytest.raises(ValueError):
        set_model_settings(path, prediction_type="sample")


def _vae_file(tmp_path, seed: int):
    """A VAE on its own, in the original layout without prefix (like vae-ft-mse-840000)."""
    from safetensors.torch import save_file

    from tests.engine.checkpoint_factory import build_pipeline

    donor = build_pipeline("sd1", tmp_path / "scratch", seed=seed)
    state = original_state_dict(donor, "sd1")
    vae_state = {
        k.removeprefix("first_stage_model."): v for k, v in state.items() if k.startswith("first_stage")
    }
    path = tmp_path / "other.vae.safetensors"
    save_file(vae_state, str(path))
    return path, donor.vae


def test_separate_vae_replaces_the_checkpoints(tmp_path):
    vae_path, donor_vae = _vae_file(tmp_path, seed=7)
    assert inspect_model(vae_path).family == "vae"
    assert not inspect_model(vae_path).loadable
    pipe = load_single_file(single_file("sd1"), torch_dtype=torch.float32, vae_path=vae_path)
    for key, value in donor_vae.state_dict().items():
        assert torch.equal(pipe.vae.state_dict()[key], value), key

    from safetensors.torch import save_file

    state = original_state_dict(tiny("sd1").pipe, "sd1")
    without_vae = tmp_path / "no-vae.safetensors"
    save_file({k: v for k, v in state.items() if not k.startswith("first_stage_model.")}, str(without_vae))
    info = inspect_model(without_vae)
    assert not info.loadable and info.reason == NO_VAE_REASON and info.needs_vae
    with pytest.raises(ModelLoadError, match="no VAE"):
        load_single_file(without_vae, torch_dtype=torch.float32)
    loaded = load_single_file(without_vae, torch_dtype=torch.float32, vae_path=vae_path)
    assert torch.equal(loaded.vae.decoder.conv_out.weight, donor_vae.decoder.conv_out.weight)


def test_a_checkpoint_missing_weights_is_refused_before_generation(tmp_path):
    from safetensors.torch import save_file

    state = original_state_dict(tiny("sd1").pipe, "sd1")
    del state["model.diffusion_model.out.2.bias"]
    path = tmp_path / "incomplete.safetensors"
    save_file(state, str(path))
    with pytest.raises(ModelLoadError, match="lacks weights for its unet: conv_out.bias"):
        load_single_file(path, torch_dtype=torch.float32)


def test_the_engine_loader_opens_single_files(tmp_path):
    from ldm_studio.engine.loader import load_model

    model = load_model(single_file("sd1-pruned"), device="cpu", dtype="float32", cache_dir=tmp_path)
    assert model.family == "sd1"
    assert model.pipe.unet.config.mid_block_type is None
    assert len(model.model_hash) == 10
