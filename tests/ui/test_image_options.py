"""The prompt panel's Tiling switch and Tiled VAE choice: into the draft, back from an image, saved."""

from __future__ import annotations

import pytest

from ldm_studio.app.settings import Settings
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.ui.image_options import bind_image_options
from ldm_studio.ui.prompt_panel import PromptPanel


@pytest.fixture
def panel(qtbot) -> PromptPanel:
    panel = PromptPanel()
    qtbot.addWidget(panel)
    return panel


def test_tiling_and_tiled_vae_reach_the_draft(panel):
    drafts = []
    panel.edited.connect(drafts.append)
    options = panel.image_options
    assert panel.draft().request.tiling is False and "tiled_vae" not in panel.draft().request.extras
    options.tiling.setChecked(True)
    assert drafts[-1].request.tiling is True
    options.set_tiled_vae_mode("always")
    assert drafts[-1].request.extras["tiled_vae"] == "always"
    options.set_tiled_vae_mode("auto")
    assert "tiled_vae" not in drafts[-1].request.extras  # the default is not written


def test_an_image_sets_tiling_but_not_the_app_setting(panel):
    panel.image_options.set_tiled_vae_mode("never")
    made = GenerationRequest("tiles", seed=1, tiling=True, extras={"tiled_vae": "always"})
    panel.set_request(made)
    assert panel.image_options.tiling.isChecked()
    assert panel.draft().request.extras["tiled_vae"] == "never"
    panel.set_request(made.replace(tiling=False))
    assert not panel.draft().request.tiling


def test_the_tiled_vae_choice_is_an_app_setting(panel, tmp_path):
    settings = Settings(tiled_vae="always")
    bind_image_options(panel.image_options, settings)
    assert panel.image_options.tiled_vae.currentText() == "Always"
    panel.image_options.set_tiled_vae_mode("never")
    assert settings.tiled_vae == "never"
    settings.save(tmp_path)
    assert Settings.load(tmp_path).tiled_vae == "never"
