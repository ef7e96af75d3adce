"""The fastest CPU path (engine.cpu_speed): decided from fake CPU descriptions, applied at load time only
for "auto", recorded in the metadata, and computing an image close to the exact float32 one."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ldm_studio.engine import cpu_speed
from ldm_studio.engine.cpu_speed import EXACT, CpuSpeedPlan, plan_for

AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
ZEN5 = frozenset({"avx2", "avx512f", "avx512_bf16"})  # AVX512-BF16 dot products, no AMX
AVX2_ONLY = frozenset({"avx2", "fma"})


@pytest.mark.parametrize(
    ("capability", "flags", "expected"),
    [
        ("AVX512", AMX, CpuSpeedPlan(True, True, True)),
        ("AVX512", ZEN5, CpuSpeedPlan(True, True, True)),
        ("AVX2", AVX2_ONLY, CpuSpeedPlan(False, True, True)),
        ("AVX512", AVX2_ONLY | {"avx512f"}, CpuSpeedPlan(False, True, True)),  # AVX-512 without bf16
        ("DEFAULT", frozenset({"asimd", "bf16"}), EXACT),  # ARM: nothing measured there
        ("SVE256", frozenset({"sve", "bf16"}), EXACT),
        ("NO AVX", frozenset(), EXACT),
    ],
)
def test_the_plan_follows_the_cpu_capability_and_flags(capability, flags, expected):
    assert plan_for("cpu", "auto", capability, flags) == expected


@pytest.mark.parametrize("choice", ["float32", "bfloat16", "float16"])
def test_an_explicit_precision_is_the_exact_path(choice):
    assert plan_for("cpu", choice, "AVX512", AMX) == EXACT


@pytest.mark.parametrize("device", ["cuda", "mps"])
def test_gpus_are_left_alone(device):
    assert plan_for(device, "auto", "AVX512", AMX) == EXACT


def test_small_unets_stay_contiguous_where_channels_last_was_slower():
    small = plan_for("cpu", "auto", "AVX2", AVX2_ONLY, unet_width=128)
    assert small == CpuSpeedPlan(False, False, True)
    assert plan_for("cpu", "auto", "AVX2", AVX2_ONLY, unet_width=320).channels_last_unet


def test_labels_say_what_runs():
    assert CpuSpeedPlan(True, True, True).label == "bf16 autocast, channels-last UNet+VAE"
    assert CpuSpeedPlan(False, False, True).label == "channels-last VAE"
    assert EXACT.label == ""


def test_this_machine_gets_a_plan_and_cuda_never_does():
    plan = cpu_speed.cpu_speed_plan("cpu", "auto")
    assert isinstance(plan, CpuSpeedPlan)
    assert cpu_speed.cpu_speed_plan("cuda", "auto") == EXACT  # decided without touching a GPU


def test_channels_last_layout_keeps_the_numbers(tiny_model):
    pipe = copy.deepcopy(tiny_model.pipe)
    pipe.unet.to(memory_format=torch.contiguous_format)
    pipe.vae.to(memory_format=torch.contiguous_format)
    sample = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    width = pipe.unet.config.cross_attention_dim
    text = torch.randn(2, 77, width, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), torch.autocast("cpu", enabled=False):
        before = pipe.unet(sample, 500, encoder_hidden_states=text).sample
        image_before = pipe.vae.decode(sample[:1]).sample
        cpu_speed.apply_layout(pipe, CpuSpeedPlan(False, True, True))
        after = pipe.unet(sample, 500, encoder_hidden_states=text).sample
        image_after = pipe.vae.decode(sample[:1]).sample
    assert pipe.unet.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    assert pipe.vae.decoder.conv_in.weight.is_contiguous(memory_format=torch.channels_last)
    # another summation order, not other arithmetic: float32 rounding only
    assert float((after - before).abs().max()) < 1e-4
    assert float((image_after - image_before).abs().max()) < 1e-4


def test_load_lays_out_auto_as_planned_and_float32_exactly(tiny_sd_folder, tiny_model):
    from ldm_studio.engine.loader import load_model

    exact = load_model(tiny_sd_folder, device="cpu", dtype="float32")
    assert exact.pipe.vae.decoder.conv_in.weight.is_contiguous()
    assert exact.pipe.unet.conv_in.weight.is_contiguous()
    plan = cpu_speed.cpu_speed_plan("cpu", "auto", cpu_speed.unet_width(tiny_model.pipe))
    vae_weight = tiny_model.pipe.vae.decoder.conv_in.weight
    assert vae_weight.is_contiguous(memory_format=torch.channels_last) == plan.channels_last_vae
    unet_weight = tiny_model.pipe.unet.conv_in.weight
    assert not unet_weight.is_contiguous(memory_format=torch.channels_last)  # width 16: stays contiguous


def _pixels(result) -> np.ndarray:  # noqa: ANN001
    assert type(result).__name__ == "Finished", result
    return np.stack([np.asarray(image.convert("RGB"), dtype=np.int16) for image in result.images])


def test_the_fast_path_records_its_precision_and_stays_close_to_float32(tiny_sd_folder, monkeypatch):
    from ldm_studio.engine import precision
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.loader import load_model
    from ldm_studio.engine.request import GenerationRequest

    # the bf16 path on any CPU (emulated where there are no bf16 units: slower, same numbers)
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    request = GenerationRequest("a red apple", seed=3, steps=8, guidance=5.0, sampler="Euler a")
    exact = generate(load_model(tiny_sd_folder, device="cpu", dtype="float32"), request)
    fast_model = load_model(tiny_sd_folder, device="cpu", dtype="auto")
    fast = generate(fast_model, request)
    assert exact.metadata["precision"] == "float32"
    assert fast.metadata["precision"] == "float32 + bf16 autocast"
    difference = np.abs(_pixels(fast) - _pixels(exact))
    # measured here (AVX512-BF16): max 3 levels of 255, mean 0.57, on an image with std 39
    assert difference.mean() < 1.5 and difference.max() <= 8, (difference.mean(), difference.max())


def test_without_bf16_units_the_fast_path_gives_the_float32_pixels(tiny_sd_folder, monkeypatch):
    from ldm_studio.engine import precision
    from ldm_studio.engine.generate import generate
    from ldm_studio.engine.loader import load_model
    from ldm_studio.engine.request import GenerationRequest

    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    request = GenerationRequest("a red apple", seed=3, steps=8, guidance=5.0, sampler="Euler a")
    exact = generate(load_model(tiny_sd_folder, device="cpu", dtype="float32"), request)
    fast = generate(load_model(tiny_sd_folder, device="cpu", dtype="auto"), request)
    assert fast.metadata["precision"] == "float32"
    # channels-last only reorders float32 sums: measured 0 levels here
    assert np.abs(_pixels(fast) - _pixels(exact)).max() <= 1
