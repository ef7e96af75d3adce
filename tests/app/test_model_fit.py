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
from ldm_studio.engine.flow_models import NOT_FLOW_REASON, FlowVariant
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
    assert sorted(usable) == ["DPM++ 2M", "Euler", "Heun", "UniPC"]
    assert fit.sampler_reason("Euler a") == fit.sampler_reason("LCM") == NOT_FLOW_REASON
    assert fit.sampler_reason("DPM++ 2M SDE Karras") == fit.sampler_reason("DPM++ 2M SDE") == NOT_FLOW_REASON
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
    session.statuses, session.qtbot = statuses, qtbot
    return session


def test_loading_flux_switches_the_draft_to_its_default_sampler_and_says_so(flux_dev):
    assert flux_dev.model.fit.guidance_kind == GUIDANCE_DISTILLED
    assert flux_dev.draft.request.sampler == "Euler"
    said = [text for text, _ms in flux_dev.statuses.named("status")]
    assert said[-1].startswith(
        "Loaded flux-dev. FLUX.1 dev cannot use the DPM++ 2M Karras sampler; using Euler."
    )


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


SD35_TURBO = FlowVariant("sd3", "SD 3.5 Large", guidance_embedded=False, uses_cfg=True)


def load(qtbot, session, path, flow):
    session.backend.flow = flow
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(path)
    return session.draft.request


def test_flux_dev_adopts_its_distilled_guidance_and_says_so(flux_dev):
    request = flux_dev.draft.request
    assert (request.guidance, request.steps) == (3.5, 28)  # CFG 7 is not FLUX guidance, nor 3 steps
    said = flux_dev.statuses.named("status")[-1][0]
    assert said.endswith("FLUX.1 dev: using its default distilled guidance 3.5 and 28 steps.")
    flux_dev.replace_draft(typed("a lighthouse", sampler="Euler", steps=20, guidance=4.0))
    load(flux_dev.qtbot, flux_dev, "/models/flux-dev-2", FLUX_DEV)
    assert (flux_dev.draft.request.guidance, flux_dev.draft.request.steps) == (4.0, 20)  # sensible: kept


def test_schnell_then_sd_gives_back_the_users_cfg_and_steps(qtbot, flux_dev):
    flux_dev.replace_draft(typed("a lighthouse", guidance=6.0, steps=30))
    load(qtbot, flux_dev, "/models/sd15", None)
    schnell = load(qtbot, flux_dev, "/models/flux-schnell", FLUX_SCHNELL)
    assert (schnell.guidance, schnell.steps) == (1.0, 4)
    dev = load(qtbot, flux_dev, "/models/flux-dev", FLUX_DEV)
    assert (dev.guidance, dev.steps) == (3.5, 28)  # schnell's values are not sensible for dev either
    sd = load(qtbot, flux_dev, "/models/sd15", None)
    assert (sd.guidance, sd.steps, sd.sampler) == (6.0, 30, "Euler a")
    said = flux_dev.statuses.named("status")[-1][0]
    assert "Back to your" in said and "CFG 6" in said and "30 steps" in said


def test_a_value_changed_on_the_flow_model_is_not_taken_back(qtbot, flux_dev):
    flux_dev.replace_draft(typed("a lighthouse", sampler="Heun", guidance=4.0, steps=28))
    sd = load(qtbot, flux_dev, "/models/sd15", None)
    assert (sd.guidance, sd.sampler, sd.steps) == (4.0, "Heun", 3)  # steps were still dev's 28: given back


def test_sd35_large_turbo_and_medium_defaults(qtbot, make_session):  # noqa: F811
    session = make_session(ScriptedBackend(size=64))
    session.replace_draft(typed("a lighthouse", steps=20))
    turbo = load(qtbot, session, "/models/sd3.5_large_turbo.safetensors", SD35_TURBO)
    assert (turbo.guidance, turbo.steps, turbo.sampler, turbo.width) == (
        1.0,
        4,
        "Euler",
        None,
    )  # not SD-Turbo's
    medium = load(qtbot, session, "/models/sd3.5_medium", SD35)
    assert (medium.guidance, medium.steps) == (4.5, 40)


def test_keep_mine_on_flux_is_remembered_for_that_model(qtbot, flux_dev):
    flux_dev.few_step.keep_mine()
    assert flux_dev.draft.request.guidance == 7.0 and flux_dev.draft.request.sampler == "Euler"
    load(qtbot, flux_dev, "/models/sd15", None)
    again = load(qtbot, flux_dev, "/models/flux-dev", FLUX_DEV)
    assert again.guidance == 7.0  # the user's own, not the default


def test_generate_pressed_while_flux_loads_runs_fitted_to_flux(qtbot, make_session):  # noqa: F811
    import threading

    backend = ScriptedBackend(size=64, flow=FLUX_DEV, load_gate=threading.Event())
    session = make_session(backend)
    with qtbot.waitSignal(session.loadingChanged, timeout=5000):
        session.load_model("/models/flux-dev")
    session.edit(typed("a lighthouse", sampler="DPM++ 2M Karras", schedule="Karras"))
    assert session.generate() is not None and session.running == 1
    with qtbot.waitSignal(session.resultChanged, timeout=5000):
        backend.load_gate.set()
    ran = backend.requests[-1]
    assert (ran.sampler, ran.schedule, ran.guidance, ran.steps) == ("Euler", "Automatic", 3.5, 28)
    assert session.running == 0
