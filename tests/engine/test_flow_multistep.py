"""DPM++ 2M and UniPC in their flow forms on SD 3 and FLUX.1 (diffusers' multistep solvers with
flow sigmas, flow_prediction and the model's shift)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ldm_studio.engine.events import Step
from ldm_studio.engine.generate import generate
from ldm_studio.engine.loader import load_model
from ldm_studio.engine.preview import PreviewMode, PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from tests.flow_models import IMAGE_SIZE, build_tiny_flux, build_tiny_sd3

PROMPT = "a red apple on a wooden table"
SOLVERS = {"DPM++ 2M": "DPMSolverMultistepScheduler", "UniPC": "UniPCMultistepScheduler"}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow-multistep")
    return {"sd3": build_tiny_sd3(root / "sd3"), "flux": build_tiny_flux(root / "flux")}


@pytest.fixture(scope="module")
def models(folders):
    return {name: load_model(folder, device="cpu", dtype="float32") for name, folder in folders.items()}


def request_for(sampler: str, **changes) -> GenerationRequest:
    base = dict(
        prompt=PROMPT, negative_prompt="blurry", seed=42, steps=4, guidance=4.5,
        width=IMAGE_SIZE, height=IMAGE_SIZE, sampler=sampler,
    )  # fmt: skip
    return GenerationRequest(**{**base, **changes})


def pixels(result) -> np.ndarray:
    assert hasattr(result, "images"), getattr(result, "message", result)
    return np.stack([np.asarray(image) for image in result.images])


@pytest.mark.parametrize("sampler", list(SOLVERS))
def test_sd3_same_pixels_as_diffusers_with_the_flow_solver(folders, models, sampler):
    import diffusers

    pipe = diffusers.StableDiffusion3Pipeline.from_pretrained(folders["sd3"], local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    shift = pipe.scheduler.config.shift
    pipe.scheduler = getattr(diffusers, SOLVERS[sampler])(
        use_flow_sigmas=True, prediction_type="flow_prediction", flow_shift=shift, solver_order=2
    )  # how diffusers' docs swap a flow solver into SD 3
    theirs = pipe(
        PROMPT, negative_prompt="blurry", num_inference_steps=4, guidance_scale=4.5,
        height=IMAGE_SIZE, width=IMAGE_SIZE, generator=torch.Generator().manual_seed(42), output_type="np",
    ).images  # fmt: skip
    ours = pixels(generate(models["sd3"], request_for(sampler)))
    assert np.array_equal(ours, (theirs * 255).round().astype(np.uint8))
    euler = pixels(generate(models["sd3"], request_for("Euler")))
    assert not np.array_equal(ours, euler)  # really another solver


@pytest.mark.parametrize("sampler", list(SOLVERS))
def test_flux_dev_runs_and_x0_previews_converge(models, sampler):
    steps = []
    preview = PreviewSettings(mode=PreviewMode.FULL, every=1)
    request = request_for(sampler, negative_prompt="", guidance=3.5)
    result = generate(models["flux"], request, steps.append, preview=preview)
    final = pixels(result)[0].astype(np.float64)
    shown = [event.preview.astype(np.float64) for event in steps if isinstance(event, Step)]
    assert len(shown) == 4
    errors = [np.abs(image - final).mean() for image in shown]
    assert errors[-1] < 0.5 and errors[0] > errors[-1]


@pytest.mark.parametrize("sampler", list(SOLVERS))
def test_img2img_starts_from_the_source_noised_to_the_solvers_sigma(models, sampler, tmp_path):
    from ldm_studio.engine.flow_models import flow_scheduler
    from ldm_studio.engine.generation.start import noised_start

    scheduler = flow_scheduler(sampler, models["sd3"].base_scheduler_config)
    scheduler.prepare(64)
    scheduler.set_timesteps(4)
    source, noise = torch.full((1, 16, 4, 4), 0.5), torch.randn(1, 16, 4, 4)
    start = noised_start(scheduler, source, noise, skipped=2, steps=4, order=1)
    sigma = scheduler.sigma_at(scheduler.timesteps[2])
    assert sigma == pytest.approx(float(scheduler.timesteps[2]) / 1000, abs=1e-3)
    assert 0.3 < sigma < 0.95
    assert torch.allclose(start.latents, (1 - sigma) * source + sigma * noise, atol=1e-6)
    image = tmp_path / "grey.png"
    Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (128, 128, 128)).save(image)
    changed = pixels(generate(models["sd3"], request_for(sampler, init_image=str(image), strength=0.5)))
    fresh = pixels(generate(models["sd3"], request_for(sampler)))
    assert changed.shape == fresh.shape and not np.array_equal(changed, fresh)
