"""The "Hires fix" section: folded and off by default, every field into the request and back (a reused
A1111 image restores them all), the final size shown, upscaler files from the library offered, and the
timeline naming the second pass."""

from __future__ import annotations

import pytest

from ldm_studio.app.jobs import StepUpdate
from ldm_studio.app.upscaler_names import upscaler_names
from ldm_studio.engine.hires_request import HiresFix
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.engine.upscalers import upscaler_folders
from ldm_studio.gallery.metadata import metadata_from_chunks
from ldm_studio.ui.hires_panel import HiresPanel
from ldm_studio.ui.prompt_panel import PromptPanel
from ldm_studio.ui.timeline_bar import TimelineBar, describe

REQUEST = GenerationRequest("a castle", seed=1, steps=20, width=512, height=768)
EVERY = HiresFix(1.5, None, 12, 0.45, "Latent (bicubic)", "DDIM", "a castle, detailed", "ugly", 5.5)


@pytest.fixture
def panel(qtbot) -> HiresPanel:
    panel = HiresPanel()
    qtbot.addWidget(panel)
    panel.show()
    return panel


def test_off_and_folded_until_asked(panel):
    assert not panel.body.isVisible() and panel.apply_to(REQUEST).hires is None
    assert panel.summary.text() == "off"
    panel.header.click()
    assert panel.body.isVisible()


def test_every_field_goes_into_the_request_and_back(panel, qtbot):
    panel.set_request(REQUEST.replace(hires=EVERY))
    assert panel.apply_to(REQUEST).hires == EVERY
    assert panel.summary.text() == "512×768 → 768×1152 · Latent (bicubic) · 12 steps"
    resized = HiresFix(resize=(1024, 1024), strength=0.3, upscaler="Lanczos")
    panel.set_request(REQUEST.replace(hires=resized))
    assert panel.apply_to(REQUEST).hires == resized
    assert panel.summary.text().startswith("512×768 → 1024×1024")
    with qtbot.waitSignal(panel.changed):
        panel.enabled.setChecked(False)
    assert panel.apply_to(REQUEST).hires is None


def test_a_source_image_turns_it_off_with_a_reason(panel):
    panel.set_request(REQUEST.replace(hires=HiresFix()))
    request = panel.apply_to(REQUEST.replace(init_image="photo.png", strength=0.5))
    assert request.hires is None and "clear the source image" in panel.error.text()
    assert panel.apply_to(REQUEST).hires == HiresFix() and panel.error.isHidden()


def test_upscaler_files_in_the_library_are_offered(qtbot):
    folder = upscaler_folders()[0]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "4x-UltraSharp.pth").write_bytes(b"not opened: listed by name")
    panel = HiresPanel()
    qtbot.addWidget(panel)
    wanted = []
    panel.upscalersWanted.connect(lambda: wanted.append(True))
    panel.set_expanded(True)  # shown: the window is asked for the list (prompt_bindings answers)
    assert wanted
    panel.set_upscalers(upscaler_names())
    names = [panel.upscaler.itemText(i) for i in range(panel.upscaler.count())]
    assert names[:6] == ["Latent", "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)",
                         "Latent (nearest)", "Latent (nearest-exact)"]  # fmt: skip
    assert names[-3:] == ["Lanczos", "Nearest", "4x-UltraSharp"]


def test_reusing_an_a1111_image_fills_the_prompt_panel(qtbot):
    text = (
        "a castle\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 9, Size: 512x512, "
        "Denoising strength: 0.5, Hires upscale: 2, Hires steps: 10, Hires upscaler: Latent (nearest-exact)"
    )
    request = metadata_from_chunks({"parameters": text}, (1024, 1024)).to_request()
    prompt_panel = PromptPanel()
    qtbot.addWidget(prompt_panel)
    prompt_panel.set_request(request)
    drafted = prompt_panel.draft().request
    assert drafted.hires == HiresFix(2.0, steps=10, strength=0.5, upscaler="Latent (nearest-exact)")
    assert prompt_panel.hires_panel.summary.text().startswith("512×512 → 1024×1024")


def test_the_timeline_names_the_second_pass(qtbot):
    bar = TimelineBar()
    qtbot.addWidget(bar)
    bar.set_second_pass(21)
    frame = StepUpdate(23, 30, 4.0, 500.0, None, None)
    assert describe(frame, None, 21).endswith("· hires 3/10")
    assert "hires" not in describe(StepUpdate(20, 30, 3.0, 10.0, None, None), None, 21)
    bar.add(frame)
    assert "hires 3/10" in bar.label.text()
