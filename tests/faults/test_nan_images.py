"""Non-finite numbers: retry the VAE decode in float32 once, and never save a black image."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from ldm_studio.engine.events import Failed, Finished
from ldm_studio.engine.generate import generate
from ldm_studio.engine.loader import load_model
from ldm_studio.engine.preview_settings import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from tests.faults.helpers import assert_logged_with_traceback, assert_one_readable_sentence, wait_until

REQUEST = GenerationRequest("a green frog", seed=9, steps=3, guidance=5)


@pytest.fixture(scope="module")
def bf16_model(tiny_sd_folder):
    """The tiny model in bfloat16, the half precision a CPU runs."""
    return load_model(tiny_sd_folder, device="cpu", dtype="bfloat16")


def nan_decoder(monkeypatch, vae, *, also_in_float32: bool) -> list[torch.dtype]:
    """Make ``vae.decode`` give NaN pixels in half precision (and in float32 too if asked)."""
    real_decode = vae.decode
    calls: list[torch.dtype] = []

    def decode(latents, *args, **kwargs):
        calls.append(latents.dtype)
        images = real_decode(latents, *args, **kwargs)[0]
        if latents.dtype != torch.float32 or also_in_float32:
            images = torch.full_like(images, float("nan"))
        return (images,)

    monkeypatch.setattr(vae, "decode", decode)
    return calls


def test_half_precision_vae_nan_is_retried_in_float32_once(bf16_model, monkeypatch, caplog):
    calls = nan_decoder(monkeypatch, bf16_model.pipe.vae, also_in_float32=False)
    with caplog.at_level(logging.WARNING):
        result = generate(bf16_model, REQUEST, preview=PreviewSettings("off"))
    assert isinstance(result, Finished), result
    assert calls == [torch.bfloat16, torch.float32]
    pixels = np.asarray(result.images[0], dtype=np.int16)
    assert pixels.std() > 0  # a real picture, not a flat black (NaN) one
    assert "retrying in float32" in caplog.text
    assert next(bf16_model.pipe.vae.parameters()).dtype == torch.bfloat16  # put back for the next run


def test_vae_nan_even_in_float32_is_reported_not_saved(bf16_model, monkeypatch):
    calls = nan_decoder(monkeypatch, bf16_model.pipe.vae, also_in_float32=True)
    result = generate(bf16_model, REQUEST, preview=PreviewSettings("off"))
    assert isinstance(result, Failed)
    assert calls == [torch.bfloat16, torch.float32]  # retried once, not more
    assert "black" in result.message or "invalid" in result.message
    assert_one_readable_sentence(result.message)
    assert next(bf16_model.pipe.vae.parameters()).dtype == torch.bfloat16


def nan_unet(monkeypatch) -> None:
    from diffusers import UNet2DConditionModel

    real_forward = UNet2DConditionModel.forward

    def forward(self, sample, *args, **kwargs):
        output = real_forward(self, sample, *args, **kwargs)
        return (torch.full_like(output[0], float("nan")),)

    monkeypatch.setattr(UNet2DConditionModel, "forward", forward)


def test_nan_latents_fail_without_saving_and_the_user_is_told(qtbot, real_worker, log_file, monkeypatch):
    worker, saver = real_worker
    nan_unet(monkeypatch)
    with qtbot.waitSignal(worker.jobFailed, timeout=30_000) as failed:
        worker.generate(REQUEST, PreviewSettings("fast"))
    message = failed.args[0]
    assert "NaN" in message or "invalid" in message
    assert_one_readable_sentence(message)
    assert_logged_with_traceback(log_file, message)
    assert saver.results == []

    monkeypatch.undo()
    finished = []
    worker.jobFinished.connect(finished.append)
    worker.generate(REQUEST, PreviewSettings("fast"))
    wait_until(lambda: len(finished) == 1)
    assert len(saver.results) == 1


def test_a_vae_that_gives_nan_is_shown_in_the_window_not_saved(qtbot, make_window, log_file, monkeypatch):
    from diffusers import AutoencoderKL

    saver_calls = []
    window = make_window(lambda result: saver_calls.append(result) or [])
    real_decode = AutoencoderKL.decode

    def decode(self, latents, *args, **kwargs):
        images = real_decode(self, latents, *args, **kwargs)[0]
        return (torch.full_like(images, float("nan")),)

    monkeypatch.setattr(AutoencoderKL, "decode", decode)
    window.prompt_panel.set_request(REQUEST)
    with qtbot.waitSignal(window.session.worker.jobFailed, timeout=30_000) as failed:
        window.generate()
    message = failed.args[0]
    assert window.banner_text() == message
    assert_one_readable_sentence(message)
    assert_logged_with_traceback(log_file, message)
    assert saver_calls == [] and window.create_page.results.count() == 0


def test_float32_retry_is_what_the_tiling_record_hears(bf16_model, monkeypatch):
    from ldm_studio.engine.generation.decode import decode

    nan_decoder(monkeypatch, bf16_model.pipe.vae, also_in_float32=False)
    heard = []
    latents = torch.randn(1, 4, 8, 8)
    images = decode(bf16_model, latents, "always", heard.append)
    assert torch.isfinite(images).all()
    assert len(heard) == 2  # the half-precision attempt, then the float32 retry the image came from
    assert heard[0].record() == heard[1].record()  # same plan both times (a small image fits untiled)
