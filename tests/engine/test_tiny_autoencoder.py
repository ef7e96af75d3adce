"""Tiny autoencoders in their three layouts: a diffusers folder, the original taesd_*.pth/.safetensors
halves and a single diffusers-named file; all must give the same pixels as diffusers' own model."""

from __future__ import annotations

import os

import pytest
import torch
from diffusers import AutoencoderTiny
from safetensors.torch import save_file

from ldm_studio.engine.errors import ModelLoadError
from ldm_studio.engine.tiny_autoencoder import (
    describe_tiny_autoencoder,
    load_tiny_autoencoder,
    scan_tiny_autoencoders,
)

SD_SCALING = 0.18215
FLUX_SCALING, FLUX_SHIFT = 0.3611, 0.1159


def tiny_taesd(latent_channels: int = 4, seed: int = 0) -> AutoencoderTiny:
    torch.manual_seed(seed)
    return AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 2, 1, 1),
        num_decoder_blocks=(1, 1, 2, 1),
        latent_channels=latent_channels,
    ).eval()


def original_halves(model: AutoencoderTiny) -> tuple[dict, dict]:
    """The original release's bare nn.Sequential names: the decoder's Clamp takes index 0."""
    encoder, decoder = {}, {}
    for key, value in model.state_dict().items():
        part, _, index, rest = key.split(".", 3)
        if part == "encoder":
            encoder[f"{index}.{rest}"] = value.clone()
        else:
            decoder[f"{int(index) + 1}.{rest}"] = value.clone()
    return encoder, decoder


def save(path, tensors):
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    else:
        torch.save(tensors, path)
    return path


def test_all_layouts_decode_identically_and_as_diffusers_does(tmp_path):
    reference = tiny_taesd(seed=1)
    reference.save_pretrained(tmp_path / "folder")
    encoder, decoder = original_halves(reference)
    original_pth = save(tmp_path / "pth" / "taesd_decoder.pth", decoder)
    save(tmp_path / "pth" / "taesd_encoder.pth", encoder)
    original_st = save(tmp_path / "st" / "taesd_decoder.safetensors", decoder)
    single = save(tmp_path / "one" / "tiny.safetensors", reference.state_dict())

    torch.manual_seed(5)
    latents = torch.randn(1, 4, 8, 8) * SD_SCALING * 3  # as the UNet sees them
    with torch.no_grad():
        expected = reference.decode(latents / SD_SCALING).sample.clamp(-1, 1)
    assert expected.shape == (1, 3, 64, 64) and expected.std() > 0.01

    for path in (tmp_path / "folder", original_pth, original_st, single):
        tiny = load_tiny_autoencoder(path)
        assert torch.allclose(tiny.decode(latents, SD_SCALING), expected, atol=1e-6), path
        assert tiny.info.latent_channels == 4 and tiny.info.has_decoder

    layouts = {
        p.name: describe_tiny_autoencoder(p).layout for p in (original_pth, single, tmp_path / "folder")
    }
    assert layouts == {
        "taesd_decoder.pth": "original",
        "tiny.safetensors": "diffusers file",
        "folder": "diffusers folder",
    }
    assert load_tiny_autoencoder(original_pth).info.has_encoder  # taesd_encoder.pth beside it was found
    assert not load_tiny_autoencoder(original_st).info.has_encoder


def test_round_trip_with_a_shifted_16_channel_latent(tmp_path):
    reference = tiny_taesd(latent_channels=16, seed=2)
    encoder, decoder = original_halves(reference)
    save(tmp_path / "taef1_encoder.safetensors", encoder)
    tiny = load_tiny_autoencoder(save(tmp_path / "taef1_decoder.safetensors", decoder))
    assert (tiny.info.latent_channels, tiny.info.variant, tiny.info.fits) == (16, "taef1", ("flux",))

    images = torch.rand(1, 3, 32, 32) * 2 - 1
    latents = tiny.encode(images, FLUX_SCALING, FLUX_SHIFT)
    with torch.no_grad():
        raw = reference.encode(images).latents
        expected_images = reference.decode(raw).sample.clamp(-1, 1)
    assert torch.allclose(latents, (raw - FLUX_SHIFT) * FLUX_SCALING, atol=1e-6)
    assert torch.allclose(tiny.decode(latents, FLUX_SCALING, FLUX_SHIFT), expected_images, atol=1e-5)


def test_the_family_comes_from_the_name_or_stays_open(tmp_path):
    _, decoder = original_halves(tiny_taesd())
    described = {
        name: describe_tiny_autoencoder(save(tmp_path / name, decoder))
        for name in ("taesdxl_decoder.pth", "taesd_decoder.safetensors", "my-preview.safetensors")
    }
    assert described["taesdxl_decoder.pth"].fits == ("sdxl",)
    assert described["taesd_decoder.safetensors"].fits == ("sd1", "sd2")
    assert (described["my-preview.safetensors"].variant, described["my-preview.safetensors"].fits) == (
        None,
        ("sd1", "sd2", "sdxl"),  # TAESD and TAESDXL have the same shapes: the user decides
    )


def test_scan_lists_what_it_finds_and_says_why_others_are_not(tmp_path):
    folder = tmp_path / "VAE-approx"
    tiny_taesd().save_pretrained(folder / "taesdxl")
    encoder, decoder = original_halves(tiny_taesd())
    save(folder / "taesd_decoder.pth", decoder)
    save(folder / "taesd_encoder.pth", encoder)
    save(folder / "4x-esrgan.pth", {"conv_first.weight": torch.zeros(8, 3, 3, 3)})

    infos = {info.name: info for info in scan_tiny_autoencoders([folder])}
    assert sorted(infos) == ["4x-esrgan", "taesd_decoder", "taesd_encoder", "taesdxl"]
    assert infos["taesdxl"].layout == "diffusers folder" and infos["taesdxl"].variant == "taesdxl"
    assert (infos["taesd_encoder"].has_encoder, infos["taesd_encoder"].has_decoder) == (True, False)
    assert (
        infos["4x-esrgan"].layout == "unreadable" and "not a tiny autoencoder" in infos["4x-esrgan"].problem
    )
    with pytest.raises(ModelLoadError, match="not a tiny autoencoder"):
        load_tiny_autoencoder(folder / "4x-esrgan.pth")
    assert load_tiny_autoencoder(folder / "taesd_encoder.pth").info.has_decoder  # its other half beside it
    alone = save(tmp_path / "alone" / "taesd_encoder.pth", encoder)
    with pytest.raises(ModelLoadError, match="only an encoder"):
        load_tiny_autoencoder(alone).decode(torch.zeros(1, 4, 2, 2), SD_SCALING)


def test_a_malicious_pickle_runs_nothing(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "taesd_decoder.pth"
    torch.save({"1.weight": torch.zeros(1), "x": Payload()}, path)
    with pytest.raises(ModelLoadError, match="refused"):
        load_tiny_autoencoder(path)
    assert not marker.exists()
