"""Tiled VAE decode / encode: the memory estimates, the choice, seams, the out-of-memory retry."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from ldm_studio.engine import vae_tiling
from ldm_studio.engine.errors import GenerationError
from ldm_studio.engine.vae_tiling import (
    HEADROOM,
    TilingChoice,
    choose_tiling,
    decode_in_bounds,
    decoder_peak_bytes,
    encode_in_bounds,
    encoder_peak_bytes,
    tiled_decoder_peak_bytes,
)

SD15 = (128, 256, 512, 512)
GIB = 2**30


# ---- the estimates, with numbers ----------------------------------------------------------------
def test_sd15_decoder_peak_at_1024_is_three_full_size_256_channel_tensors():
    # latent 128x128 -> the widest full-size level holds 256 channels at 1024x1024: 3 x 256 x 2^20 x 4 B
    assert decoder_peak_bytes((1, 4, 128, 128), SD15) == 3 * GIB
    assert decoder_peak_bytes((1, 4, 64, 64), SD15) == 768 * 2**20  # 512x512: a quarter
    assert decoder_peak_bytes((2, 4, 128, 128), SD15, element_size=2) == 3 * GIB  # batch 2, fp16


def test_sd15_encoder_peak_at_1024_is_three_full_size_128_channel_tensors():
    assert encoder_peak_bytes((1, 3, 1024, 1024), SD15) == 3 * 128 * 2**20 * 4
    assert encoder_peak_bytes((1, 3, 1024, 1024), SD15) == 1.5 * GIB


def test_tiled_estimate_is_one_tile_plus_the_kept_tiles():
    tiled = tiled_decoder_peak_bytes((1, 4, 128, 128), SD15, tile_latent=64)
    one_tile = decoder_peak_bytes((1, 4, 64, 64), SD15)
    # stride 48 latents -> 3 x 3 tiles of 512x512 RGB kept, plus the 1024x1024 result
    kept = (9 * 3 * 512 * 512 + 3 * 1024 * 1024) * 4
    assert tiled == one_tile + kept
    assert tiled < decoder_peak_bytes((1, 4, 128, 128), SD15) / 3


# ---- the choice -------------------------------------------------------------------------------------
def test_auto_tiles_only_when_the_estimate_exceeds_the_headroom_of_free_memory():
    assert choose_tiling("auto", 3 * GIB, 2 * GIB).tiled
    assert choose_tiling("auto", 3 * GIB, 2 * GIB).reason == "would not fit in free memory"
    assert not choose_tiling("auto", 3 * GIB, 8 * GIB).tiled
    just_over = int(3 * GIB / HEADROOM) - 1
    assert choose_tiling("auto", 3 * GIB, just_over).tiled
    assert not choose_tiling("auto", 3 * GIB, None).tiled  # unknown: as diffusers would
    assert choose_tiling("auto", 1, 8 * GIB, model_asks=True).tiled  # the model's settings say so


def test_always_and_never_are_obeyed_and_one_tile_is_never_tiled():
    assert choose_tiling("always", 1, 100 * GIB).tiled
    assert not choose_tiling("never", 100 * GIB, 1).tiled
    assert not choose_tiling("always", 1, None, larger_than_tile=False).tiled
    with pytest.raises(ValueError, match="auto, always, never"):
        choose_tiling("sometimes", 1, 1)


def test_the_record_says_what_was_done_in_megabytes():
    record = TilingChoice(True, "auto", "would not fit in free memory", 3 * GIB, 2 * GIB).record()
    assert record == {
        "tiled": True,
        "mode": "auto",
        "reason": "would not fit in free memory",
        "estimate_mb": 3072,
        "free_mb": 2048,
    }


def test_cpu_free_memory_is_a_positive_number():
    free = vae_tiling.free_memory_bytes(torch.device("cpu"))
    assert free is not None and free > 0


def test_cpu_free_memory_without_psutil_reads_proc_meminfo(monkeypatch):
    import sys

    with_psutil = vae_tiling.available_ram()
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil now raises ImportError
    from_proc = vae_tiling.available_ram()
    assert from_proc is not None and abs(from_proc - with_psutil) < 0.25 * with_psutil


def test_cuda_free_memory_counts_what_the_caching_allocator_holds_unused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 * GIB, 80 * GIB))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda device=None: 1 * GIB)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda device=None: GIB // 2)
    assert vae_tiling.free_memory_bytes(torch.device("cuda")) == 2 * GIB + GIB // 2


def test_mps_free_memory_is_the_recommended_maximum_less_what_is_allocated(monkeypatch):
    monkeypatch.setattr(torch.mps, "recommended_max_memory", lambda: 12 * GIB, raising=False)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 5 * GIB, raising=False)
    assert vae_tiling.free_memory_bytes(torch.device("mps")) == 7 * GIB


# ---- decoding tile by tile ----------------------------------------------------------------------------
def small_vae(tile_latent: int = 8, overlap: float = 0.25):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=16,
    ).eval()
    vae.tile_latent_min_size, vae.tile_sample_min_size = tile_latent, tile_latent * 2
    vae.tile_overlap_factor = overlap
    return vae


def smooth_latent(size: int = 32) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    channels = [torch.sin(2.0 * xs + 1.0 * c) + torch.cos(1.5 * ys - 0.5 * c) for c in range(4)]
    return torch.stack(channels)[None]


def steps_across(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute change from each pixel column to the next, and from each row to the next."""
    across = (images[..., 1:] - images[..., :-1]).abs().mean(dim=(0, 1, 2))
    down = (images[..., 1:, :] - images[..., :-1, :]).abs().mean(dim=(0, 1, 3))
    return torch.stack([across, down])


def seam_ratios(images: torch.Tensor, reach: int = 4) -> dict[int, float]:
    """Each step (column i to i + 1, row i to i + 1, the larger) over the median of the ``reach``
    steps either side of it: a seam is a step that stands out from its neighbours."""
    steps = steps_across(images)
    ratios = {}
    for i in range(reach, steps.shape[1] - reach):
        neighbours = torch.cat([steps[:, i - reach : i], steps[:, i + 1 : i + 1 + reach]], dim=1)
        ratios[i] = float((steps[:, i] / neighbours.median(dim=1).values).max())
    return ratios


def worst_seam(images: torch.Tensor, reach: int = 4) -> float:
    return max(seam_ratios(images, reach).values())


def tile_borders(vae, latent_side: int) -> list[int]:
    """The pixel steps where diffusers' tiles meet: each tile's first column (after the one before)
    and the end of the blend into it, for tiles of ``tile_latent_min_size`` at its overlap."""
    factor = vae.tile_sample_min_size // vae.tile_latent_min_size
    stride = int(vae.tile_latent_min_size * (1 - vae.tile_overlap_factor))
    blend = int(vae.tile_sample_min_size * vae.tile_overlap_factor)
    starts = range(stride * factor, latent_side * factor, stride * factor)
    return sorted({i - 1 for start in starts for i in (start, start + blend)} - {-1})


def edge_free(vae):
    """Random weights make strong edge artefacts at every zero-padded border (a trained VAE has few),
    and every tile has such borders; replicate padding takes them out, so what remains is the seam."""
    for module in vae.decoder.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.padding_mode = "replicate"
    return vae


@torch.no_grad()
def test_tiled_decode_of_a_smooth_latent_has_no_seam_step_at_tile_borders():
    vae = edge_free(small_vae(tile_latent=16))
    heard: list[TilingChoice] = []
    images = decode_in_bounds(vae, smooth_latent(48), "always", heard.append)
    assert heard[0].tiled and images.shape == (1, 3, 96, 96)  # 4 x 4 tiles of 32 px, 8 px blended
    assert not vae.use_tiling  # put back
    ratios = seam_ratios(images)
    borders = tile_borders(vae, 48)
    assert borders == [23, 31, 47, 55, 71, 79]  # where each tile starts and its blend ends
    assert max(ratios[i] for i in borders) < 3.0
    assert max(ratios.values()) < 3.0  # nor anywhere else
    # the check can fail: the same tiles without overlap leave a step ~8x its neighbours at each
    # join (pixel 32 and 64), and only there
    hard = edge_free(small_vae(tile_latent=16, overlap=0.0))
    hard_ratios = seam_ratios(decode_in_bounds(hard, smooth_latent(48), "always"))
    joins = tile_borders(hard, 48)
    assert joins == [31, 63]
    assert min(hard_ratios[i] for i in joins) > 3.0
    assert max(ratio for i, ratio in hard_ratios.items() if i not in joins) < 3.0


@torch.no_grad()
def test_untiled_choice_gives_exactly_the_plain_decode(monkeypatch):
    vae = small_vae()
    latent = smooth_latent()
    monkeypatch.setattr(vae_tiling, "free_memory_bytes", lambda device: 64 * GIB)
    heard: list[TilingChoice] = []
    images = decode_in_bounds(vae, latent, "auto", heard.append)
    assert heard[0].reason == "fits in free memory" and not heard[0].tiled
    assert torch.equal(images, vae.decode(latent, return_dict=False)[0])
    monkeypatch.setattr(vae_tiling, "free_memory_bytes", lambda device: 1000)
    images = decode_in_bounds(vae, latent, "auto", heard.append)
    assert heard[1].tiled and heard[1].reason == "would not fit in free memory"
    assert torch.equal(images, decode_in_bounds(vae, latent, "always"))


def fail_above(vae, size: int):
    """The decoder runs out of memory on inputs wider than ``size`` latents (a small GPU)."""
    original = vae.decoder.forward

    def forward(z, *args, **kwargs):
        if z.shape[-1] > size:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.00 GiB")
        return original(z, *args, **kwargs)

    vae.decoder.forward = forward


@torch.no_grad()
def test_an_untiled_decode_out_of_memory_is_retried_tiled_once(monkeypatch):
    vae = small_vae()
    monkeypatch.setattr(vae_tiling, "free_memory_bytes", lambda device: 64 * GIB)
    expected = decode_in_bounds(vae, smooth_latent(), "always")
    fail_above(vae, 8)
    heard: list[TilingChoice] = []
    images = decode_in_bounds(vae, smooth_latent(), "auto", heard.append)
    assert heard[0].tiled and heard[0].reason == "ran out of memory untiled"
    assert torch.equal(images, expected)
    with pytest.raises(GenerationError, match="set Tiled VAE to Auto or Always"):
        decode_in_bounds(vae, smooth_latent(), "never")
    fail_above(vae, 1)  # now even one tile does not fit
    with pytest.raises(GenerationError, match=r"64x64 image, also tile by tile"):
        decode_in_bounds(vae, smooth_latent(), "auto")


@torch.no_grad()
def test_tiled_encode_gives_the_latent_shape_and_puts_the_switch_back():
    vae = small_vae()
    pixels = torch.rand(1, 3, 64, 64) * 2 - 1
    tiled = encode_in_bounds(vae, pixels, "always").mean
    plain = encode_in_bounds(vae, pixels, "never").mean
    assert tiled.shape == plain.shape == (1, 4, 32, 32)
    assert not torch.equal(tiled, plain)  # it did tile
    other = encode_in_bounds(vae, torch.rand(1, 3, 64, 64) * 2 - 1, "never").mean
    assert (tiled - plain).abs().mean() < 0.75 * (other - plain).abs().mean()  # and still of this image
    assert not vae.use_tiling


# ---- through a generation ------------------------------------------------------------------------------
def test_the_choice_is_recorded_in_our_json_and_not_in_the_a1111_text(tiny_model):
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.request import GenerationRequest
    from ldm_studio.gallery.metadata import encode_png, split_record

    def run(mode: str):
        request = GenerationRequest("a cat", seed=1, steps=2, sampler="Euler", width=64, height=64)
        return generate(tiny_model, request.replace(extras={"tiled_vae": mode}))

    always, never = run("always"), run("never")
    assert always.metadata["vae_tiling"]["tiled"] and always.metadata["vae_tiling"]["mode"] == "always"
    assert never.metadata["vae_tiling"]["tiled"] is False
    assert never.metadata["vae_tiling"]["reason"] == "asked for"
    assert not np.array_equal(np.asarray(always.images[0]), np.asarray(never.images[0]))
    name, digest, extra = split_record(always.metadata)
    data = encode_png(always.images[0], always.request, model_name=name, model_hash=digest, extra=extra)
    chunks = Image.open(io.BytesIO(data)).info
    assert "tiled" not in chunks["parameters"].lower()
    assert json.loads(chunks["ldm-studio"])["extra"]["vae_tiling"]["tiled"] is True
