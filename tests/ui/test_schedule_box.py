"""The schedule-type combo beside the sampler, TCD's gamma, the few-step offer bar and the model
settings' few-step choice, as the panel shows them."""

from __future__ import annotations

from pathlib import Path

from ldm_studio.engine.request import GenerationRequest
from ldm_studio.ui.model_settings_dialog import ModelSettingsDialog
from ldm_studio.ui.prompt_panel import PromptPanel


def enabled_schedules(panel: PromptPanel) -> list[str]:
    combo = panel.schedule_box.schedule
    model = combo.model()
    return [model.item(row).text() for row in range(combo.count()) if model.item(row).isEnabled()]


def test_the_schedule_follows_what_the_sampler_can_take(qtbot):
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.sampler.setCurrentText("DPM++ 2M")
    assert enabled_schedules(panel) == ["Automatic", "Karras", "Exponential", "SGM Uniform", "Beta"]
    panel.schedule_box.schedule.setCurrentText("Karras")
    assert panel.draft().request.schedule == "Karras"
    panel.sampler.setCurrentText("Euler a")  # no sigma schedules there: back to Automatic
    assert enabled_schedules(panel) == ["Automatic", "SGM Uniform"]
    assert panel.draft().request.schedule == "Automatic"
    panel.sampler.setCurrentText("LCM")
    assert enabled_schedules(panel) == ["Automatic"]
    tip = panel.schedule_box.schedule.model().item(1).toolTip()
    assert tip.startswith("LCM cannot use this schedule type.")


def test_tcd_shows_its_gamma_and_the_draft_carries_it(qtbot):
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.show()
    assert panel.schedule_box.gamma.isHidden()
    panel.set_request(
        GenerationRequest("a fox", sampler="TCD", steps=4, guidance=1.0, extras={"tcd_gamma": 0.5})
    )
    assert not panel.schedule_box.gamma.isHidden()
    assert panel.draft().request.extras == {"tcd_gamma": 0.5}
    panel.sampler.setCurrentText("Euler")
    assert panel.schedule_box.gamma.isHidden() and panel.draft().request.extras == {}


def test_a_request_with_a_schedule_is_shown_and_given_back(qtbot):
    panel = PromptPanel()
    qtbot.addWidget(panel)
    request = GenerationRequest("a fox", sampler="Euler", schedule="SGM Uniform", steps=4, guidance=1.0)
    panel.set_request(request)
    got = panel.draft().request
    assert (got.sampler, got.schedule, got.steps, got.guidance) == ("Euler", "SGM Uniform", 4, 1.0)


def test_model_mode_sets_the_sampling_fields_only(qtbot):
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.set_request(GenerationRequest("my prompt", steps=30, batch_size=3))
    preset = GenerationRequest(
        "other", sampler="Euler a", steps=1, guidance=1.0, width=512, height=512, batch_size=1
    )
    panel.set_request(preset, "model")
    got = panel.draft().request
    assert (got.prompt, got.batch_size) == ("my prompt", 3)
    assert (got.sampler, got.steps, got.guidance, got.width) == ("Euler a", 1, 1.0, 512)


def test_the_offer_bar_shows_use_only_when_there_is_something_to_apply(qtbot):
    panel = PromptPanel()
    qtbot.addWidget(panel)
    panel.show()
    offer = panel.few_step_offer
    assert offer.isHidden()
    offer.show_offer("LCM LoRA: use LCM, 4 steps, CFG 1.5?", "Use")
    assert offer.isVisible() and offer.use.isVisible() and offer.text.text().startswith("LCM LoRA")
    with qtbot.waitSignal(offer.useRequested, timeout=1000):
        offer.use.click()
    offer.show_offer("Turbo model: using Euler a, 1 step, CFG off, 512×512.")
    assert offer.isVisible() and not offer.use.isVisible() and offer.keep.isVisible()
    offer.show_offer("")
    assert offer.isHidden()


def test_the_model_settings_offer_the_few_step_kind(qtbot, tmp_path):
    model = tmp_path / "merge.safetensors"
    model.write_bytes(b"")
    dialog = ModelSettingsDialog(Path(model), {"few_step": "lightning"}, detected="")
    qtbot.addWidget(dialog)
    assert dialog.values()["few_step"] == "lightning"
    dialog.few_step.setCurrentIndex(0)
    assert dialog.values()["few_step"] is None
    found = ModelSettingsDialog(Path(model), {}, detected="Turbo — Euler a, 1 step, CFG off, 512×512")
    qtbot.addWidget(found)
    assert found.few_step.itemText(0) == "Detected: Turbo — Euler a, 1 step, CFG off, 512×512"
    assert found.few_step.findData("none") == 1
