"""In the window: stopping on a timeline step shows the fast preview first, then the real VAE's x0;
the preview box offers Auto and Tiny decoder and says which preview is in use."""

from __future__ import annotations

from ldm_studio.engine.preview_settings import PreviewMode
from tests.ui.test_timeline import finish_one, studio  # noqa: F401


def test_a_stopped_on_step_shows_the_true_x0_after_the_fast_preview(qtbot, studio):  # noqa: F811
    finish_one(qtbot, studio)
    timeline, preview = studio.create_page.timeline, studio.create_page.preview
    timeline.slider.setValue(3)
    assert preview.image().pixelColor(0, 0).red() == int(255 * 3 / 6)  # the kept fast preview, at once
    qtbot.waitUntil(lambda: preview.image().pixelColor(0, 0).red() == 3, timeout=5000)  # the fake's VAE
    assert timeline.label.text().endswith("· VAE")
    timeline.slider.setValue(4)
    qtbot.waitUntil(lambda: preview.image().pixelColor(0, 0).red() == 4, timeout=5000)
    timeline.slider.setValue(3)  # cached: no second decode
    assert preview.image().pixelColor(0, 0).red() == 3
    assert studio.backend.decoded_steps == [3, 4]


def test_the_preview_box_offers_auto_and_tiny_and_says_why(qtbot, studio):  # noqa: F811
    panel = studio.prompt_panel
    modes = [panel.preview_mode.itemData(i) for i in range(panel.preview_mode.count())]
    assert modes == ["auto", "fast", "full", "tiny", "off"]
    panel.preview_mode.setCurrentIndex(panel.preview_mode.findData("auto"))
    assert studio.session.preview.mode is PreviewMode.AUTO
    assert panel.preview_reason.reason.text() == (
        "Fast preview: full decode cost not measured yet, no tiny decoder for sd"
    )
    panel.preview_reason.draft.setChecked(True)
    assert studio.session.settings.draft_decode is True
