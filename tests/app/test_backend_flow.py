"""The real backend tells the window what a FLUX.1 / SD 3 model takes (tiny random-weight folders),
and an SD request fitted to it runs instead of failing."""

from __future__ import annotations

import pytest

from ldm_studio.app.backend import TorchBackend
from ldm_studio.app.model_fit import GUIDANCE_CFG, GUIDANCE_DISTILLED, GUIDANCE_NONE, fitted_request
from ldm_studio.engine.events import Failed, Finished
from ldm_studio.engine.preview import PreviewSettings
from ldm_studio.engine.request import GenerationRequest
from tests.flow_models import IMAGE_SIZE, build_tiny_flux, build_tiny_sd3


@pytest.fixture(scope="module")
def flow_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("flow-backend")
    return {
        "flux-dev": build_tiny_flux(root / "tiny-flux-dev"),
        "flux-schnell": build_tiny_flux(root / "tiny-flux-schnell", dev=False, seed=7),
        "sd3": build_tiny_sd3(root / "tiny-sd3"),
    }


@pytest.mark.parametrize(
    ("name", "label", "guidance"),
    [
        ("flux-dev", "FLUX.1 dev", GUIDANCE_DISTILLED),
        ("flux-schnell", "FLUX.1 schnell", GUIDANCE_NONE),
        ("sd3", "SD 3", GUIDANCE_CFG),
    ],
)
def test_the_summary_carries_the_flow_models_fit(flow_folders, name, label, guidance):
    backend = TorchBackend()
    try:
        summary = backend.load(flow_folders[name], "cpu", "float32")
        pipe = backend._model.pipe
        fit = summary.fit
        assert (fit.family_label, fit.guidance_kind, fit.flow) == (label, guidance, True)
        assert fit.default_sampler == "Euler" and not fit.sampler_reason("Heun")
        assert fit.sampler_reason("DPM++ 2M SDE Karras") and fit.sampler_reason("Euler a")
        # the tiny VAE downsamples 2x: patches of 4 pixels, under any request's multiple of 8
        assert backend._model.vae_scale_factor == 2 and fit.size_step == 8
        assert summary.native_size == pipe.default_sample_size * pipe.vae_scale_factor  # the pipeline's
    finally:
        backend.unload()


def test_an_sd_request_fitted_to_flux_runs(flow_folders):
    backend = TorchBackend()
    try:
        summary = backend.load(flow_folders["flux-dev"], "cpu", "float32")
        sd_request = GenerationRequest(
            "a red apple",
            seed=3,
            steps=2,
            sampler="DPM++ 2M Karras",
            schedule="Karras",
            width=IMAGE_SIZE,
            height=IMAGE_SIZE,
            model=summary.path,
        )

        def run(request):
            return backend.generate(request, lambda _event: None, lambda: False, PreviewSettings())

        assert isinstance(run(sd_request), Failed)  # as it stands, the engine refuses it in words
        fitted, note = fitted_request(sd_request, summary.fit)
        assert note and isinstance(run(fitted), Finished)
    finally:
        backend.unload()
