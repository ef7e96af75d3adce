"""The prompt panel with SD 3 / FLUX loaded: flow samplers only, the guidance the model reads, sides of
16; and back to SD, everything as before (the window over a scripted backend)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from ldm_studio.engine.flow_models import FlowVariant
from tests.app.fake_backend import ScriptedBackend
from tests.ui.windows import open_window

FLUX_DEV = FlowVariant("flux", "FLUX.1 dev", guidance_embedded=True, uses_cfg=False)
FLUX_SCHNELL = FlowVariant("flux", "FLUX.1 schnell", guidance_embedded=False, uses_cfg=False)


def item(box, text):
    return box.model().item(box.findText(text))


def tip(box, text) -> str:
    return box.itemData(box.findText(text), Qt.ItemDataRole.ToolTipRole) or ""


def test_flux_dev_greys_noise_samplers_relabels_cfg_and_steps_sizes_by_16(qtbot):
    window = open_window(qtbot, ScriptedBackend(size=64, flow=FLUX_DEV), "/models/flux-dev")
    panel = window.prompt_panel
    try:
        sampler = panel.sampler
        assert sampler.currentText() == "Euler"  # the model's default, from Euler a
        for name in ("DPM++ 2M SDE", "DPM++ 2M SDE Karras", "Euler a", "LCM", "DPM++ 2M Karras"):
            assert not item(sampler, name).isEnabled(), name
            assert tip(sampler, name).startswith("Not for FLUX.1 dev: ")
        assert "noise-prediction sampler" in tip(sampler, "Euler a")
        for name in ("Euler", "Heun", "DPM++ 2M", "UniPC"):  # the flow forms
            assert item(sampler, name).isEnabled(), name
        hires = panel.hires_panel.sampler
        assert item(hires, "Same sampler").isEnabled() and not item(hires, "DPM++ 2M SDE").isEnabled()
        schedule = panel.schedule_box.schedule
        assert not item(schedule, "Karras").isEnabled() and item(schedule, "Automatic").isEnabled()
        assert "own shifted flow schedule" in tip(schedule, "Karras")
        assert panel.guidance_label.text() == "Guidance (distilled)" and panel.guidance.isEnabled()
        assert "one pass per step" in panel.guidance.toolTip()
        assert panel.width_box.singleStep() == panel.height_box.singleStep() == 16
        assert "multiples of 16" in panel.width_box.toolTip()
        assert "FLUX.1 dev" in window.model_panel.status.text()
        assert panel.guidance.value() == 3.5  # Forge's Distilled CFG default, not SD's CFG 7
        assert not panel.clip_skip.isEnabled() and "clip skip does not apply" in panel.clip_skip.toolTip()
        assert "distilled guidance 3.5" in panel.few_step_offer.text.text()  # with [Keep mine]
        panel.grab().save("/tmp/flux_dev_panel.png")
        assert "flow matching" in window.model_panel.status.text()
        statuses = []
        window.session.status.connect(lambda text, ms: statuses.append((text, ms)))
        panel.prompt.set_text("a lighthouse")
        panel.width_box.setValue(520)  # typed past the multiple: fitted in words when it runs
        with qtbot.waitSignal(window.session.resultChanged, timeout=5000):
            window.generate()
        made = window.backend.requests[-1]
        assert (made.sampler, made.width) == ("Euler", 512)
        assert "FLUX.1 dev needs sides in multiples of 16; the size is 512 × 64." in [
            text for text, _ms in statuses
        ]

        window.backend.flow = None  # an SD model next: everything offered again
        with qtbot.waitSignal(window.session.modelChanged, timeout=5000):
            window.load_model("/models/emoji")
        assert all(item(sampler, name).isEnabled() for name in ("DPM++ 2M SDE", "Euler a", "LCM"))
        assert sampler.currentText() == "Euler a"  # given back: the sampler from before FLUX
        assert panel.guidance.value() == 7.0 and panel.clip_skip.isEnabled()
        assert "A1111" in panel.clip_skip.toolTip()
        sampler.setCurrentText("Euler")
        assert item(schedule, "Karras").isEnabled()  # Euler takes Karras on SD
        assert panel.guidance_label.text() == "CFG" and panel.width_box.singleStep() == 8
    finally:
        window.session.worker.shutdown(timeout=5)


def test_flux_schnell_disables_guidance_with_the_reason(qtbot):
    window = open_window(qtbot, ScriptedBackend(size=64, flow=FLUX_SCHNELL), "/models/flux-schnell")
    panel = window.prompt_panel
    try:
        assert not panel.guidance.isEnabled() and not panel.guidance_label.isEnabled()
        assert "takes no guidance" in panel.guidance.toolTip()
        assert panel.guidance.value() == 1.0  # the session fitted the draft: CFG 1
        assert window.session.draft.request.guidance == 1.0
        assert panel.steps.value() == 4 and not panel.clip_skip.isEnabled()
        window.backend.flow = None
        with qtbot.waitSignal(window.session.modelChanged, timeout=5000):
            window.load_model("/models/emoji")
        assert panel.guidance.value() == 7.0 and panel.guidance.isEnabled()  # the CFG from before
        assert panel.steps.value() == 20
    finally:
        window.session.worker.shutdown(timeout=5)
