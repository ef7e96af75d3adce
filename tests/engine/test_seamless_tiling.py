"""Seamless tiling (A1111's "Tiling"): circular padding for one generation, put back afterwards."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ldm_studio.engine.generate import generate
from ldm_studio.engine.generation.tiling import circular_padding, padded_convs
from ldm_studio.engine.request import GenerationRequest
from tests.engine.lora_factory import kohya_lora, ldm_mappable_paths, load_own_copy, save_safetensors

REQUEST = GenerationRequest("a tiled floor", seed=5, steps=3, sampler="Euler", width=64, height=64)


@pytest.fixture
def model(tiny_sd_folder):
    return load_own_copy(tiny_sd_folder)


def pixels(model, request: GenerationRequest) -> np.ndarray:
    result = generate(model, request)
    assert result.__class__.__name__ == "Finished", getattr(result, "message", result)
    return np.asarray(result.images[0]).astype(np.float64)


def wrap_ratio(image: torch.Tensor) -> float:
    """How far the last pixel column is from the first (the seam when tiled side by side), over the
    median step between neighbouring columns (images as N x C x H x W)."""
    across = (image[..., 1:] - image[..., :-1]).abs().mean(dim=(0, 1, 2))
    return float((image[..., -1] - image[..., 0]).abs().mean() / across.median())


def periodic_latent(channels: int, size: int = 32) -> torch.Tensor:
    """A smooth latent that repeats exactly across its width and height."""
    ys, xs = torch.meshgrid(torch.arange(size) / size, torch.arange(size) / size, indexing="ij")
    waves = [torch.sin(2 * math.pi * xs + c) + torch.cos(2 * math.pi * ys - c) for c in range(channels)]
    return torch.stack(waves)[None]


def rolled_noise_image(model, request: GenerationRequest, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """The image from the seed's noise, and the image from the same noise rolled ``shift`` latent
    pixels right and down."""
    from ldm_studio.engine.generation.start import initial_noise, make_generators

    noise = initial_noise(model, request, make_generators(request), torch.float32)
    plain = generate(model, request, noise=noise)
    rolled = generate(model, request, noise=torch.roll(noise, (shift, shift), dims=(-2, -1)))
    return (np.asarray(plain.images[0]).astype(np.float64), np.asarray(rolled.images[0]).astype(np.float64))


def test_a_tiled_image_has_no_border_rolling_the_noise_rolls_the_image(model):
    # With circular padding every layer is shift-equivariant, so the picture lives on a torus: the
    # seam between the right and left edges is an ordinary pair of neighbouring columns.
    factor = model.vae_scale_factor
    plain, rolled = rolled_noise_image(model, REQUEST.replace(tiling=True), 4)
    expected = np.roll(plain, (4 * factor, 4 * factor), axis=(0, 1))
    assert np.abs(rolled - expected).max() <= 2  # uint8 rounding of float sums taken in another order
    # the check can fail: with ordinary padding the borders differ
    plain, rolled = rolled_noise_image(model, REQUEST, 4)
    assert np.abs(rolled - np.roll(plain, (4 * factor, 4 * factor), axis=(0, 1))).max() > 20


def test_tiling_makes_the_edges_meet_as_neighbouring_columns_do(model):
    # Noise rolled by half the width puts the picture's right and left edge columns side by side in
    # the middle, where the picture has ordinary neighbours: tiled, they are exactly those columns.
    width = REQUEST.width
    half = width // model.vae_scale_factor // 2

    def middle_pair(request):
        from ldm_studio.engine.generation.start import initial_noise, make_generators

        noise = initial_noise(model, request, make_generators(request), torch.float32)
        plain, rolled = (
            np.asarray(generate(model, request, noise=start).images[0]).astype(np.float64)
            for start in (noise, torch.roll(noise, half, dims=-1))
        )
        edges = np.stack([plain[:, -1], plain[:, 0]], axis=1)
        return edges, rolled[:, width // 2 - 1 : width // 2 + 1]

    edges, middle = middle_pair(REQUEST.replace(tiling=True))
    assert np.abs(edges - middle).max() <= 2
    edges, middle = middle_pair(REQUEST)  # the check can fail: ordinary padding
    assert np.abs(edges - middle).mean() > 10


@torch.no_grad()
def test_a_seamless_vae_decodes_a_repeating_latent_into_a_repeating_image(model):
    # Random weights draw noise-like pictures, in which the wrap step alone cannot tell tiled from
    # ordinary; a smooth repeating latent can: only circular padding keeps the edges neighbours.
    vae = model.pipe.vae
    latent = periodic_latent(vae.config.latent_channels)
    with circular_padding(vae):
        seamless = vae.decode(latent, return_dict=False)[0]
    ordinary = vae.decode(latent, return_dict=False)[0]
    assert wrap_ratio(seamless) < 1.6 < wrap_ratio(ordinary)


def test_the_next_ordinary_generation_is_the_same_as_on_a_fresh_model(model, tiny_sd_folder):
    tiled = pixels(model, REQUEST.replace(tiling=True))
    assert all(conv.padding_mode == "zeros" for conv in padded_convs(model.pipe.unet, model.pipe.vae))
    after = pixels(model, REQUEST)
    fresh = pixels(load_own_copy(tiny_sd_folder), REQUEST)
    assert np.array_equal(after, fresh)
    assert not np.array_equal(tiled, after)  # the tiled one did differ


def test_the_next_generation_is_ordinary_after_a_tiled_one_fails(model, tiny_sd_folder, monkeypatch):
    from ldm_studio.engine.hires_request import HiresFix

    vae = model.pipe.vae
    monkeypatch.setattr(vae, "decode", lambda *args, **kwargs: (_ for _ in ()).throw(RuntimeError("boom")))
    failed = generate(model, REQUEST.replace(tiling=True))
    assert failed.__class__.__name__ == "Failed" and "boom" in failed.message
    monkeypatch.undo()
    assert all(conv.padding_mode == "zeros" for conv in padded_convs(model.pipe.unet, vae))
    hires = REQUEST.replace(width=32, height=32, hires=HiresFix(2.0, steps=1, strength=0.5))
    pixels(model, hires.replace(tiling=True))  # a tiled hires fix: both passes, then put back
    assert np.array_equal(pixels(model, REQUEST), pixels(load_own_copy(tiny_sd_folder), REQUEST))


def test_padding_is_put_back_when_the_generation_fails(model):
    unet = model.pipe.unet
    with pytest.raises(RuntimeError, match="boom"), circular_padding(unet) as convs:
        assert convs and all(conv.padding_mode == "circular" for conv in convs)
        raise RuntimeError("boom")
    assert all(conv.padding_mode == "zeros" for conv in padded_convs(unet))
    # 1x1 convolutions pad nothing, so they are left alone
    assert all(any(conv.padding) for conv in convs)


def test_cancelled_tiling_generation_leaves_ordinary_padding(model):
    calls = [0]

    def stop() -> bool:
        calls[0] += 1
        return calls[0] > 3

    result = generate(model, REQUEST.replace(tiling=True), should_stop=stop)
    assert result.__class__.__name__ == "Cancelled"
    assert all(conv.padding_mode == "zeros" for conv in padded_convs(model.pipe.unet, model.pipe.vae))


def test_tiling_works_with_a_lora_on_the_convolutions(model, tmp_path):
    from ldm_studio.engine.networks import NETWORK_FILES_KEY

    tensors = kohya_lora(model.pipe.unet, None, unet_paths=ldm_mappable_paths(model.pipe.unet), seed=2)
    path = save_safetensors(tensors, tmp_path / "tiles.safetensors")
    request = REQUEST.replace(
        prompt="a tiled floor <lora:tiles:1>", tiling=True, extras={NETWORK_FILES_KEY: [str(path)]}
    )
    result = generate(model, request)
    assert result.__class__.__name__ == "Finished", getattr(result, "message", result)
    assert result.metadata.get("loras"), result.metadata
    plain = pixels(model, REQUEST.replace(tiling=True))
    assert not np.array_equal(plain, np.asarray(result.images[0]).astype(np.float64))  # the LoRA acted
    factor = model.vae_scale_factor  # and the picture still lives on a torus (see the first test)
    tiled, rolled = rolled_noise_image(model, request, 4)
    assert np.abs(rolled - np.roll(tiled, (4 * factor, 4 * factor), axis=(0, 1))).max() <= 2


def test_tiling_with_a_tiled_vae_decode_still_meets_at_the_edges(model):
    from ldm_studio.engine.vae_tiling import decode_in_bounds, vae_tiling_set

    vae = model.pipe.vae
    vae.tile_latent_min_size, vae.tile_sample_min_size = 16, 32  # a 64 px image in 3 x 3 tiles
    request = REQUEST.replace(tiling=True, extras={"tiled_vae": "always"})
    result = generate(model, request)
    assert result.metadata["vae_tiling"]["tiled"] is True
    assert all(conv.padding_mode == "zeros" for conv in padded_convs(vae))
    # Tile by tile, the border columns are as close to the untiled seamless decode's (whose edges
    # are neighbours) as the tiled decode is anywhere else. Circular padding inside each tile would
    # wrap that tile onto itself instead: its borders then stand far off.
    latent = torch.randn(1, vae.config.latent_channels, 32, 32, generator=torch.Generator().manual_seed(0))

    def edge_and_inner_error(images, reference):
        error = (images - reference).abs()
        edges = torch.cat([error[..., :2].flatten(), error[..., -2:].flatten(),
                           error[..., :2, :].flatten(), error[..., -2:, :].flatten()])  # fmt: skip
        return float(edges.mean()), float(error[..., 8:-8, 8:-8].mean())

    with torch.no_grad(), circular_padding(vae):
        reference = decode_in_bounds(vae, latent, "never")
        edge, inner = edge_and_inner_error(decode_in_bounds(vae, latent, "always"), reference)
        with vae_tiling_set(vae, True):
            naive = vae.decode(latent, return_dict=False)[0]
    assert edge < 1.5 * inner
    naive_edge, naive_inner = edge_and_inner_error(naive, reference)
    assert naive_edge > 2 * naive_inner  # the check can fail


def test_circular_padding_is_exactly_periodic_for_one_conv():
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    x = torch.rand(1, 1, 8, 8)
    with circular_padding(conv):
        shifted = conv(torch.roll(x, 3, dims=-1))
        assert torch.allclose(shifted, torch.roll(conv(x), 3, dims=-1), atol=1e-6)
    assert conv.padding_mode == "zeros"
