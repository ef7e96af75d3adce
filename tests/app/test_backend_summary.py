"""What the window is told about a loaded model: the precision it really computes in."""

from __future__ import annotations

import pytest

from ldm_studio.app.backend import TorchBackend
from ldm_studio.engine import precision


@pytest.mark.parametrize("bf16_cpu", [True, False])
def test_the_summary_says_when_float32_weights_compute_in_bf16(tiny_sd_folder, monkeypatch, bf16_cpu):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: bf16_cpu)
    backend = TorchBackend()
    try:
        auto = backend.load(tiny_sd_folder, "cpu", "auto")
        forced = backend.load(tiny_sd_folder, "cpu", "float32")
    finally:
        backend.unload()
    assert auto.dtype == ("float32 + bf16 autocast" if bf16_cpu else "float32")
    assert forced.dtype == "float32"  # the user's explicit float32 is never autocast
