"""The precision policy behind "auto": bf16 autocast only on CPUs with bf16 units (engine.precision)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from ldm_studio.engine import precision

INTEL_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
OLD_X86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n"


def test_cpu_flags_are_read_from_cpuinfo_text():
    assert {"avx512_bf16", "amx_bf16"} <= precision.cpu_flags(INTEL_AMX)
    assert precision.cpu_flags(OLD_X86) & precision.BF16_FLAGS == set()
    assert "bf16" in precision.cpu_flags(ARM)  # listed, but not a flag we trust for speed


@pytest.mark.parametrize("supported", [True, False])
def test_auto_on_a_cpu_follows_bf16_support(monkeypatch, supported):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: supported)
    assert precision.wants_bf16_autocast("cpu", "auto") is supported
    context = precision.autocast_context(torch.device("cpu"), "auto")
    if supported:
        assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16
    else:
        assert isinstance(context, contextlib.nullcontext)


@pytest.mark.parametrize(
    ("device", "choice"), [("cpu", "float32"), ("cpu", "bfloat16"), ("cpu", "float16"), ("cuda", "auto")]
)
def test_an_explicit_precision_or_another_device_gets_no_autocast(monkeypatch, device, choice):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    assert not precision.wants_bf16_autocast(device, choice)
    assert isinstance(precision.autocast_context(device, choice), contextlib.nullcontext)


def test_this_machine_is_answered_without_error():
    assert isinstance(precision.cpu_supports_bf16(), bool)


def test_autocast_runs_matmuls_in_bf16_and_channels_last_keeps_the_numbers(monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    layer = torch.nn.Conv2d(4, 8, 3, padding=1)
    inputs = torch.randn(1, 4, 16, 16)
    reference = layer(inputs)
    with precision.autocast_context("cpu", "auto"):
        low = layer(inputs)
        precision.channels_last_vae(layer)
        assert layer.weight.is_contiguous(memory_format=torch.channels_last)
        low_channels_last = layer(inputs)
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), reference, rtol=0.05, atol=0.05)
    assert torch.allclose(low_channels_last.float(), low.float(), rtol=0.02, atol=0.02)
