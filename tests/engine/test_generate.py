import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ldm_studio.engine.events import Cancelled, Finished, Started, Step
from ldm_studio.engine.generate import estimate_x0, generate
from ldm_studio.engine.preview import (
    PreviewMode,
    PreviewSettings,
    fit_latent_projection,
    x0_from_model_output,
)
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import make_scheduler, sampler_names


def pixels(result) -> np.ndarray:
    assert isinstance(result, Finished), result
    return np.stack([np.asarray(image, dtype=np.int16) for image in result.images])


def test_same_seed_gives_identical_pixels_and_another_seed_differs(tiny_model):
    request = GenerationRequest("a red apple", seed=42, steps=4, sampler="Euler a")
    first, second = pixels(generate(tiny_model, request)), pixels(generate(tiny_model, request))
    other = pixels(generate(tiny_model, request.replace(seed=43)))
    assert np.array_equal(first, second)
    assert np.abs(first - other).max() > 0


def test_batch_image_i_uses_seed_plus_i(tiny_model):
    batch = pixels(
        generate(tiny_model, GenerationRequest("cat", seed=7, steps=3, batch_size=2, sampler="Euler"))
    )
    alone = pixels(generate(tiny_model, GenerationRequest("cat", seed=8, steps=3, sampler="Euler")))
    assert np.abs(batch[1] - alone[0]).max() <= 2  # same noise; batched matmuls may round differently


def test_random_seed_is_drawn_and_reported(tiny_model):
    events = []
    result = generate(tiny_model, GenerationRequest("cat", seed=None, steps=2), events.append)
    started = events[0]
    assert isinstance(started, Started) and started.request.seed is not None
    assert result.request.seed == started.request.seed


@pytest.mark.parametrize("sampler", sampler_names())
def test_every_sampler_reports_one_event_per_real_step(tiny_model, sampler):
    events = []
    result = generate(tiny_model, GenerationRequest("dog", seed=1, steps=4, sampler=sampler), events.append)
    steps = [event for event in events if isinstance(event, Step)]
    assert isinstance(result, Finished)
    assert [step.index for step in steps] == [1, 2, 3, 4]
    assert all(step.total == 4 and step.preview is not None for step in steps)
    assert result.images[0].size == (16, 16)
    assert events[-1] is result


def test_cancel_stops_within_one_step_and_returns_no_image(tiny_model):
    events = []

    def stop_after_two() -> bool:
        return sum(isinstance(event, Step) for event in events) >= 2

    result = generate(tiny_model, GenerationRequest("cat", seed=1, steps=10), events.append, stop_after_two)
    assert isinstance(result, Cancelled) and result.at_step == 2
    assert sum(isinstance(event, Step) for event in events) == 2
    assert not any(isinstance(event, Finished) for event in events)
    assert isinstance(generate(tiny_model, GenerationRequest("cat", seed=1, steps=2)), Finished)


def test_full_preview_approaches_the_final_image(tiny_model):
    events = []
    request = GenerationRequest("a boat", seed=3, steps=8, sampler="DPM++ 2M")
    result = generate(tiny_model, request, events.append, preview=PreviewSettings(PreviewMode.FULL, every=1))
    final = pixels(result)[0].astype(np.float32)
    previews = [event.preview.astype(np.float32) for event in events if isinstance(event, Step)]
    first_error = np.abs(previews[0] - final).mean()
    last_error = np.abs(previews[-1] - final).mean()
    assert last_error < first_error
    assert last_error < 1.0


def test_preview_off_sends_no_images(tiny_model):
    events = []
    generate(
        tiny_model, GenerationRequest("x", seed=1, steps=2), events.append, preview=PreviewSettings("off")
    )
    assert all(event.preview is None for event in events if isinstance(event, Step))


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_x0_formula_matches_the_scheduler_own_estimate(tiny_model, prediction_type):
    config = dict(tiny_model.base_scheduler_config, prediction_type=prediction_type, clip_sample=False)
    scheduler = make_scheduler("DDIM", config)
    scheduler.set_timesteps(10)
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(1, 4, 8, 8, generator=generator)
    model_output = torch.randn(1, 4, 8, 8, generator=generator)
    t = scheduler.timesteps[3]
    output = scheduler.step(model_output, t, sample)
    alpha = float(scheduler.alphas_cumprod[int(t)])
    ours = x0_from_model_output(model_output, sample, alpha, prediction_type)
    torch.testing.assert_close(ours, output.pred_original_sample, atol=1e-4, rtol=1e-4)
    no_x0 = SimpleNamespace(prev_sample=output.prev_sample)
    torch.testing.assert_close(estimate_x0(scheduler, no_x0, model_output, sample, t), ours)


def test_v_prediction_model_previews_and_finishes(tiny_sd_v_folder):
    from ldm_studio.engine.loader import load_model

    model = load_model(tiny_sd_v_folder, device="cpu")
    assert model.prediction_type == "v_prediction"
    events = []
    request = GenerationRequest("v", seed=2, steps=6, sampler="UniPC")
    result = generate(model, request, events.append, preview=PreviewSettings(PreviewMode.FULL))
    final = pixels(result)[0].astype(np.float32)
    previews = [event.preview.astype(np.float32) for event in events if isinstance(event, Step)]
    assert np.abs(previews[-1] - final).mean() < np.abs(previews[0] - final).mean()


def test_projection_fit_recovers_a_linear_decoder():
    true_weights = torch.tensor([[0.5, -0.2, 0.1], [0.1, 0.4, -0.3], [-0.2, 0.2, 0.6], [0.3, 0.1, 0.2]])
    true_bias = torch.tensor([0.05, -0.1, 0.2])
    encoder = torch.nn.Conv2d(3, 4, kernel_size=4, stride=4)

    class LinearVae(torch.nn.Module):
        config = SimpleNamespace(scaling_factor=0.5, shift_factor=0.0)

        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def encode(self, images):
            return SimpleNamespace(latent_dist=SimpleNamespace(mean=self.encoder(images)))

        def decode(self, latents):
            scaled = latents * self.config.scaling_factor
            rgb = torch.einsum("bchw,cr->brhw", scaled, true_weights) + true_bias[None, :, None, None]
            return SimpleNamespace(sample=torch.nn.functional.interpolate(rgb, scale_factor=4))

    projection = fit_latent_projection(LinearVae(), image_size=32, count=4)
    np.testing.assert_allclose(projection.weights, true_weights.numpy(), atol=1e-3)
    np.testing.assert_allclose(projection.bias, true_bias.numpy(), atol=1e-3)


def test_loading_and_generating_attempts_no_network(tiny_sd_folder, monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    from ldm_studio.engine.loader import load_model

    model = load_model(tiny_sd_folder, device="cpu")
    assert isinstance(generate(model, GenerationRequest("offline", seed=1, steps=2)), Finished)


QT_FREE_CHECK = """
import importlib, pkgutil, sys
import ldm_studio.engine, ldm_studio.gallery, ldm_studio.training
for package in (ldm_studio.engine, ldm_studio.gallery, ldm_studio.training):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
bad = sorted(m for m in sys.modules if m.startswith(("PySide6", "shiboken6", "qasync")))
print(bad)
sys.exit(1 if bad else 0)
"""


def test_engine_gallery_and_training_never_import_qt():
    completed = subprocess.run([sys.executable, "-c", QT_FREE_CHECK], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr[-2000:]


def test_an_unexpected_error_inside_a_step_becomes_a_failed_result(tiny_model):
    from ldm_studio.engine.events import Failed

    reason = "index 5 is out of bounds for dimension 0 with size 5"

    def broken(_module, _inputs):
        raise IndexError(reason)

    handle = tiny_model.pipe.unet.register_forward_pre_hook(broken)
    try:
        result = generate(tiny_model, GenerationRequest("x", seed=1, steps=2))
    finally:
        handle.remove()
    assert isinstance(result, Failed)
    assert result.message == f"Generation failed (IndexError): {reason}"
    assert "Traceback" in result.detail
    assert isinstance(generate(tiny_model, GenerationRequest("x", seed=1, steps=2)), Finished)
