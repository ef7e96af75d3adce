"""Seamless tiling (A1111's "Tiling"): circular padding for one generation, put back afterwards."""

from __future__ import annotations

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


def wrap_ratios(image: np.ndarray) -> tuple[float, float]:
    """How far the last column is from the first (the seam when tiled side by side), over the median
    step between neighbouring columns; the same for the last and first rows."""
    across = np.abs(np.diff(image, axis=1)).mean(axis=(0, 2))
    down = np.abs(np.diff(image, axis=0)).mean(axis=(1, 2))
    wrap_x = np.abs(image[:, -1] - image[:, 0]).mean()
    wrap_y = np.abs(image[-1] - image[0]).mean()
    return float(wrap_x / np.median(across)), float(wrap_y / np.median(down))


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
    # Random weights draw noise-like pictures, so this alone cannot tell tiled from ordinary (the
    # test above does); it is the check a user makes, kept as a floor.
    assert max(wrap_ratios(pixels(model, REQUEST.replace(tiling=True)))) < 1.5


def test_the_next_ordinary_generation_is_the_same_as_on_a_fresh_model(model, tiny_sd_folder):
    pixels(model, REQUEST.replace(tiling=True))
    assert all(conv.padding_mode == "zeros" for conv in padded_convs(model.pipe.unet, model.pipe.vae))
    after = pixels(model, REQUEST)
    fresh = pixels(load_own_copy(tiny_sd_folder), REQUEST)
    assert np.array_equal(after, fresh)


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
    assert max(wrap_ratios(np.asarray(result.images[0]).astype(np.float64))) < 1.5
    plain = pixels(model, REQUEST.replace(tiling=True))
    assert not np.array_equal(plain, np.asarray(result.images[0]).astype(np.float64))  # the LoRA acted


def test_tiling_with_a_tiled_vae_decode_still_meets_at_the_edges(model):
    vae = model.pipe.vae
    vae.tile_latent_min_size, vae.tile_sample_min_size = 16, 32  # a 64 px image in 3 x 3 tiles
    request = REQUEST.replace(tiling=True, extras={"tiled_vae": "always"})
    result = generate(model, request)
    assert result.metadata["vae_tiling"]["tiled"] is True
    image = np.asarray(result.images[0]).astype(np.float64)
    assert max(wrap_ratios(image)) < 2.0
    assert all(conv.padding_mode == "zeros" for conv in padded_convs(vae))


def test_circular_padding_is_exactly_periodic_for_one_conv():
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    x = torch.rand(1, 1, 8, 8)
    with circular_padding(conv):
        shifted = conv(torch.roll(x, 3, dims=-1))
        assert torch.allclose(shifted, torch.roll(conv(x), 3, dims=-1), atol=1e-6)
    assert conv.padding_mode == "zeros"
