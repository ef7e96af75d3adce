"""Few-step presets in the session: a distilled model's preset adopted on load, [Keep mine] remembered
per model, a few-step LoRA in the prompt offered with its preset (scripted backend, no widgets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ldm_studio.app.network_entries import NetworkEntry
from ldm_studio.app.settings import Settings
from ldm_studio.engine.checkpoints import set_model_settings
from tests.app import test_session
from tests.app.test_session import MODEL, Recorder, typed
from tests.engine.test_distilled import KOHYA_LCM, write_safetensors

make_session = test_session.make_session
TURBO = "/models/sd_xl_turbo_1.0_fp16.safetensors"
LIGHTNING = "/models/sdxl_lightning_4step.safetensors"


def load(qtbot, session, path):
    with qtbot.waitSignal(session.modelChanged, timeout=5000):
        session.load_model(path)


def sampling(request):
    return (request.sampler, request.schedule, request.steps, request.guidance, request.width, request.height)


def test_a_turbo_model_brings_its_preset_and_says_so(qtbot, make_session):
    session = make_session()
    session.edit(typed("a fox", sampler="DPM++ 2M", steps=30, guidance=7.0, width=768, height=768))
    changes = Recorder(session.few_step, "offered")
    drafts = Recorder(session, "draftChanged")
    load(qtbot, session, TURBO)
    assert sampling(session.draft.request) == ("Euler a", "Automatic", 1, 1.0, 512, 512)
    assert session.draft.request.prompt == "a fox"
    assert [mode for _draft, mode in drafts.named("draftChanged")] == ["model"]
    assert changes.named("offered") == [("Turbo model: using Euler a, 1 step, CFG off, 512×512.", "")]


def test_keep_mine_restores_and_is_remembered_for_that_model(qtbot, make_session):
    settings = Settings()
    session = make_session(settings=settings)
    load(qtbot, session, MODEL)
    session.edit(
        typed("a fox", sampler="DPM++ 2M", schedule="Karras", steps=30, guidance=6.0, width=64, height=64)
    )
    load(qtbot, session, LIGHTNING)
    assert sampling(session.draft.request) == ("Euler", "SGM Uniform", 4, 1.0, 64, 64)
    session.few_step.keep_mine()
    assert sampling(session.draft.request) == ("DPM++ 2M", "Karras", 30, 6.0, 64, 64)
    assert settings.own_sampling[LIGHTNING]["steps"] == 30
    # another model, then Lightning again: the user's own settings come back, not the preset
    session.edit(typed("a fox", sampler="Euler a", steps=12, width=64, height=64))
    load(qtbot, session, MODEL)
    load(qtbot, session, LIGHTNING)
    assert sampling(session.draft.request) == ("DPM++ 2M", "Karras", 30, 6.0, 64, 64)
    session.few_step.forget_own(LIGHTNING)
    load(qtbot, session, MODEL)
    load(qtbot, session, LIGHTNING)
    assert session.draft.request.steps == 4


def test_loading_the_same_model_again_keeps_the_users_edits(qtbot, make_session):
    session = make_session()
    load(qtbot, session, LIGHTNING)
    session.edit(typed("a fox", sampler="Euler", schedule="SGM Uniform", steps=6, guidance=1.0))
    load(qtbot, session, LIGHTNING)  # e.g. OK in its settings dialog reloads it
    assert session.draft.request.steps == 6


def test_the_users_choice_in_the_model_settings_wins(qtbot, make_session):
    set_model_settings(Path(LIGHTNING), few_step="none")
    set_model_settings(Path("/models/my_merge.safetensors"), few_step="lcm")
    session = make_session()
    session.edit(typed("a fox", sampler="Euler a", steps=20))
    load(qtbot, session, LIGHTNING)
    assert session.draft.request.steps == 20
    load(qtbot, session, "/models/my_merge.safetensors")
    assert (session.draft.request.sampler, session.draft.request.steps) == ("LCM", 4)


@pytest.fixture
def lcm_lora(tmp_path):
    path = write_safetensors(tmp_path / "pytorch_lora_weights.safetensors", KOHYA_LCM)
    return NetworkEntry("lora", "pytorch_lora_weights", path, alias="lcm-lora-sdxl")


def test_a_few_step_lora_in_the_prompt_is_offered_and_used(qtbot, make_session, lcm_lora):
    session = make_session()
    load(qtbot, session, MODEL)
    session.networks.entries = [lcm_lora]
    offers = Recorder(session.few_step, "offered")
    drafts = Recorder(session, "draftChanged")
    session.edit(typed("a fox <lora:pytorch_lora_weights:1>", steps=20, guidance=7.0))
    session.edit(typed("a fox, red <lora:pytorch_lora_weights:1>", steps=20, guidance=7.0))  # asked once
    assert offers.named("offered") == [("LCM LoRA: use LCM, 4 steps, CFG 1.5?", "Use")]
    session.few_step.accept()
    assert sampling(session.draft.request)[:4] == ("LCM", "Automatic", 4, 1.5)
    assert session.draft.request.prompt == "a fox, red <lora:pytorch_lora_weights:1>"
    assert [mode for _draft, mode in drafts.named("draftChanged")] == ["model"]
    session.edit(session.draft)  # the preset is in place: nothing more to offer
    assert offers.named("offered")[-1] == ("", "")


def test_keep_mine_declines_a_lora_offer_for_good(qtbot, make_session, lcm_lora):
    session = make_session()
    load(qtbot, session, MODEL)
    session.networks.entries = [lcm_lora]
    offers = Recorder(session.few_step, "offered")
    session.edit(typed("a fox <lora:lcm-lora-sdxl:1>", steps=20))  # by its kohya output name
    session.few_step.keep_mine()
    session.edit(typed("a fox, <lora:lcm-lora-sdxl:0.8>", steps=20))
    assert offers.named("offered") == [("LCM LoRA: use LCM, 4 steps, CFG 1.5?", "Use"), ("", "")]
    assert session.draft.request.steps == 20


def test_removing_the_lora_takes_the_offer_away(qtbot, make_session, lcm_lora):
    session = make_session()
    load(qtbot, session, MODEL)
    session.networks.entries = [lcm_lora]
    offers = Recorder(session.few_step, "offered")
    session.edit(typed("a fox <lora:pytorch_lora_weights:1>"))
    session.edit(typed("a fox"))
    assert offers.named("offered")[-1] == ("", "")
    # a LoRA that is not in the library is still known by a name that says what it is
    session.edit(typed("a fox <lora:Hyper-SD15-8steps-lora:1>"))
    assert offers.named("offered")[-1] == ("Hyper-SD LoRA: use DDIM SGM Uniform, 8 steps, CFG off?", "Use")
