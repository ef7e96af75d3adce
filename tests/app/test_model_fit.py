"""SD 3 / FLUX in the session: their samplers, guidance and sizes, and SD settings fitted to them in
words instead of a failed job (a scripted backend whose summary carries a flow model's fit)."""

from __future__ import annotations

import pytest
from PIL import Image, PngImagePlugin

from ldm_studio.app.model_fit import (
    GUIDANCE_CFG,
    GUIDANCE_DISTILLED,
    GUIDANCE_NONE,
    ModelFit,
    fit_for,
    fitted_request,
)
from ldm_studio.engine.flow_models import NOT_FLOW_REASON, NOT_YET_REASON, FlowVariant
from ldm_studio.engine.hires_request import HiresFix
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.samplers import sampler_names
from tests.app.fake_backend import ScriptedBackend
from tests.app.test_session import Recorder, finish, make_session, typed  # noqa: F401 (fixture)

FLUX_DEV = FlowVariant("flux", "FLUX.1 dev", guidance_embedded=True, uses_cfg=False)
FLUX_SCHNELL = FlowVariant("flux", "FLUX.1 schnell", guidance_embedded=False, uses_cfg=False)
SD35 = FlowVariant("sd3", "SD 3.5 Medium", guidance_embedded=False, uses_cfg=True)


def test_a_flow_model_offers_flow_samplers_and_greys_the_rest_with_reasons():
    fit = fit_for("flux", FLUX_DEV)
    usable = [name for name in sampler_names() if not fit.sampler_reason(name)]
    assert usable == ["Euler", "Heun"]
    assert fit.sampler_reason("Euler a") == fit.sampler_reason("LCM") == NOT_FLOW_REASON
    assert fit.sampler_reason("DPM++ 2M SDE Karras")
    assert fit.sampler_reason("DPM++ 2M") == fit.sampler_reason("UniPC") == NOT_YET_REASON
    assert (fit.default_sampler, fit.size_step, fit.family_label) == ("Euler", 16, "FLUX.1 dev")
    assert fit.schedule_reason and fit.flow


@pytest.mark.parametrize(
    ("variant", "kind"), [(FLUX_DEV, GUIDANCE_DISTILLED), (FLUX_SCHNELL, GUIDANCE_NONE), (SD35, GUIDANCE_CFG)]
)
def test_guidance_kind_follows_the_variant(variant, kind):
    assert fit_for(variant.family, variant).guidance_kind == kind


def test_sd_models_keep_everything():
    assert fit_for("sd1", None) == ModelFit()
    assert not any(ModelFit().sampler_reason(name) for name in sampler_names())
    request = GenerationRequest("x", sampler="DPM++ 2M SDE", schedule="Karras", width=520, height=512)
    assert fitted_request(request, ModelFit()) == (request, "")


def test_an_sd_request_is_fitted_to_flux_with_one_sentence():
    request = GenerationRequest("x", sampler="DPM++ 2M SDE", schedule="Karras", width=520, height=512)
    fitted, note = fitted_request(request, fit_for("flux", FLUX_DEV))
    assert (fitted.sampler, fitted.schedule, fitted.width, fitted.height) == ("Euler", "Automatic", 512, 512)
    assert fitted.guidance == request.guidance  # dev reads it (as its distilled guidance)
    assert "FLUX.1 dev cannot use the DPM++ 2M SDE sampler; using Euler." in note
    assert "Karras schedule type does not apply" in note and "multiples of 16" in note
    hires = request.replace(sampler="Euler", hires=HiresFix(sampler="DPM++ 2M SDE"))
    fitted, note = fitted_request(hires, fit_for("flux", FLUX_DEV))
    assert fitted.hires.sampler == "" and "hires pass" in note
    schnell, note = fitted_request(
        request.replace(sampler="Euler", schedule="Automatic", width=512), fit_for("flux", FLUX_SCHNELL)
    )
    assert schnell.guidance == 1.0 and note == "FLUX.1 schnell takes no guidance; CFG is 1."


@pytest.fixture
def flux_dev(qtbot, make_session):  # noqa: F811 (the fixture imported above)
    session = make_session(ScriptedBackend(size=64, flow=FLUX_DEV))
    session.replace_draft(typed("a lighthouse", sampler="DPM++ 2M Karras"))
    statuses = Recorder(session, "status")
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model("/models/flux-dev")
    session.statuses = statuses
    return session


def test_loading_flux_switches_the_draft_to_its_default_sampler_and_says_so(flux_dev):
    assert flux_dev.model.fit.guidance_kind == GUIDANCE_DISTILLED
    assert flux_dev.draft.request.sampler == "Euler"
    said = [text for text, _ms in flux_dev.statuses.named("status")]
    assert said[-1] == "Loaded flux-dev. FLUX.1 dev cannot use the DPM++ 2M Karras sampler; using Euler."


def test_an_sd_image_reused_on_flux_becomes_a_flux_request_never_a_failure(qtbot, flux_dev, tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text(
        "parameters",
        "a lighthouse\nSteps: 3, Sampler: DPM++ 2M SDE, Schedule type: Karras, CFG scale: 6.5, Seed: 4242, "
        "Size: 520x512",
    )
    path = tmp_path / "sd.png"
    Image.new("RGB", (520, 512)).save(path, pnginfo=info)
    failures = Recorder(flux_dev, "jobFailed", "error")
    assert flux_dev.reuse_file(path)
    request = flux_dev.draft.request
    assert (request.sampler, request.schedule, request.width, request.seed) == (
        "Euler",
        "Automatic",
        512,
        4242,
    )
    said = flux_dev.statuses.named("status")[-1][0]
    assert said.startswith("Reused the settings of an A1111 image. FLUX.1 dev cannot use the DPM++ 2M SDE")
    update = finish(qtbot, flux_dev)
    assert flux_dev.backend.requests[-1].sampler == "Euler" and update.images
    assert failures.events == []


def test_a_greyed_sampler_that_reaches_generate_runs_as_the_default(qtbot, flux_dev):
    finish(qtbot, flux_dev, typed("a lighthouse", sampler="LCM", schedule="Automatic"))
    assert flux_dev.backend.requests[-1].sampler == "Euler"
    said = [text for text, _ms in flux_dev.statuses.named("status")]
    assert "FLUX.1 dev cannot use the LCM sampler; using Euler." in said
