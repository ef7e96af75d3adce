"""The prompt toolkit in the window: token counters, the LoRA picker, weight sliders, clip skip, reuse."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from ldm_studio.app.session import Session
from ldm_studio.app.settings import Settings
from ldm_studio.app.worker import EngineWorker
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.paths import user_dirs
from ldm_studio.ui.main_window import MainWindow
from ldm_studio.ui.model_settings_dialog import ModelSettingsDialog
from tests.app.network_files import Sd1Backend, a1111_lora_hash, write_embedding, write_lora
from tests.app.test_session_networks import a1111_png


@pytest.fixture
def studio(qtbot):
    """A window over a scripted SD 1.5, with two LoRAs (one SDXL) and an embedding in the library."""
    data = user_dirs().ensure().data
    write_lora(data / "loras" / "fox_style.safetensors", tags={"fox": 9, "orange fur": 4}, preview=True)
    write_lora(data / "loras" / "xl_detail.safetensors", family="sdxl")
    write_embedding(data / "embeddings" / "bad-hands.safetensors", vectors=4)
    backend = Sd1Backend(size=32)
    session = Session(EngineWorker(lambda: backend), Settings(), user_dirs().ensure())
    with qtbot.waitSignal(session.networks.entriesChanged, timeout=20000):
        window = MainWindow(session)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(session.worker.modelLoaded, timeout=5000):
        window.load_model("/models/sd15.safetensors")
    window.backend = backend
    yield window
    session.shutdown(timeout=5)


def open_picker(qtbot, studio):
    extras = studio.prompt_panel.extras
    extras.picker_button.click()
    qtbot.waitUntil(extras.picker.isVisible, timeout=2000)
    return extras.picker


def click_item(qtbot, picker, name: str) -> None:
    item = picker.item_named(name)
    assert item is not None, picker.visible_names()
    qtbot.mouseClick(
        picker.list.viewport(), Qt.MouseButton.LeftButton, pos=picker.list.visualItemRect(item).center()
    )


def test_the_counters_follow_the_typing_as_a1111s_do(qtbot, studio):
    panel = studio.prompt_panel
    qtbot.keyClicks(panel.prompt, "a red fox")
    qtbot.waitUntil(lambda: panel.extras.counter.text() == "3/75", timeout=30000)
    qtbot.keyClicks(panel.negative, "blurry, bad-hands")  # the embedding takes its 4 vectors
    qtbot.waitUntil(lambda: panel.extras.negative_counter.text() == "6/75", timeout=10000)
    panel.prompt.set_text("cat " * 80)
    qtbot.waitUntil(lambda: panel.extras.counter.text() == "80/150", timeout=10000)


def test_the_picker_lists_the_library_greys_another_family_and_inserts_a_tag(qtbot, studio):
    panel = studio.prompt_panel
    panel.prompt.set_text("a red fox")
    picker = open_picker(qtbot, studio)
    assert picker.visible_names() == ["fox_style", "openmoji-style", "xl_detail"]  # usable first
    xl = picker.item_named("xl_detail")
    assert not xl.flags() & Qt.ItemFlag.ItemIsEnabled
    assert "Made for SDXL; the loaded model is SD 1.x" in xl.text()
    example = picker.item_named("openmoji-style")  # the shipped example, for the bundled model only
    assert not example.flags() & Qt.ItemFlag.ItemIsEnabled and "the loaded model is SD 1.x" in example.text()
    assert "SD 1.x · LoRA · rank 4" in picker.item_named("fox_style").text()
    click_item(qtbot, picker, "fox_style")
    assert panel.prompt.text() == "a red fox, <lora:fox_style:1>"
    click_item(qtbot, picker, "xl_detail")  # greyed: nothing happens
    assert panel.prompt.text() == "a red fox, <lora:fox_style:1>"
    words = [button.text() for button in picker._word_buttons]
    assert words == ["fox", "orange fur"]
    picker._word_buttons[1].click()
    assert panel.prompt.text() == "a red fox, <lora:fox_style:1>, orange fur"
    picker.search.setText("orange")
    assert picker.visible_names() == ["fox_style"]
    picker.search.setText("nothing like it")
    assert picker.visible_names() == [] and picker.empty.isVisibleTo(picker)
    assert studio.session.draft.request.prompt == "a red fox, <lora:fox_style:1>, orange fur"


def test_an_embedding_goes_into_the_box_typed_in_last(qtbot, studio):
    panel = studio.prompt_panel
    panel.negative.setFocus()
    qtbot.waitUntil(panel.negative.hasFocus, timeout=2000)
    picker = open_picker(qtbot, studio)
    picker.set_kind("embedding")
    assert "4 tokens" in picker.item_named("bad-hands").text()
    click_item(qtbot, picker, "bad-hands")
    assert panel.negative.text() == "bad-hands" and panel.prompt.text() == ""


def test_a_slider_rewrites_the_tags_weight_and_remove_takes_the_tag_out(qtbot, studio):
    panel = studio.prompt_panel
    panel.prompt.set_text("a red fox, <lora:fox_style:0.8>, <lora:ink:1:0.5>, night")
    rows = panel.extras.active.rows
    assert [row.name for row in rows] == ["fox_style", "ink"]
    assert rows[0].box.value() == pytest.approx(0.8) and rows[0].slider.value() == 16
    assert "not in your LoRA folders" in rows[1].label.toolTip()
    rows[0].slider.setValue(12)
    assert panel.prompt.text() == "a red fox, <lora:fox_style:0.6>, <lora:ink:1:0.5>, night"
    rows[1].box.setValue(1.25)
    assert panel.prompt.text() == "a red fox, <lora:fox_style:0.6>, <lora:ink:1.25:0.75>, night"
    assert panel.extras.active.rows[0] is rows[0]  # the same rows: a dragged slider keeps its grip
    panel.prompt.undo()
    assert "<lora:ink:1:0.5>" in panel.prompt.text()  # a slider move undoes like typing
    rows[0].remove.click()
    assert panel.prompt.text() == "a red fox, <lora:ink:1:0.5>, night"
    assert [row.name for row in panel.extras.active.rows] == ["ink"]
    assert studio.session.draft.request.prompt == "a red fox, <lora:ink:1:0.5>, night"


def test_and_is_warned_about_under_the_prompt(qtbot, studio):
    panel = studio.prompt_panel
    panel.prompt.set_text("a red fox AND a blue bird")
    assert panel.extras.warning.isVisibleTo(panel) and "not supported" in panel.extras.warning.text()
    panel.prompt.set_text("a red fox and a blue bird")
    assert not panel.extras.warning.isVisibleTo(panel)


def test_clip_skip_goes_to_the_engine_and_comes_back_from_a_request(qtbot, studio):
    panel = studio.prompt_panel
    panel.prompt.set_text("a red fox")
    panel.clip_skip.setValue(2)
    assert studio.session.draft.request.clip_skip == 2
    with qtbot.waitSignal(studio.session.worker.jobFinished, timeout=5000):
        studio.generate()
    assert studio.backend.requests[-1].clip_skip == 2
    panel.set_request(GenerationRequest("x", clip_skip=3))
    assert panel.clip_skip.value() == 3 and panel.draft().request.clip_skip == 3


def test_reusing_an_image_with_a_missing_lora_names_it_in_the_banner(qtbot, studio, tmp_path):
    fox = user_dirs().data / "loras" / "fox_style.safetensors"
    studio.reuse_file(a1111_png(tmp_path / "a1111.png", a1111_lora_hash(fox), "111111111111"))
    qtbot.waitUntil(lambda: "Not in your library" in studio.banner_text(), timeout=20000)
    # fox_style and the bad-hands embedding are in the library; only ink is not
    assert studio.banner_text() == "Not in your library: ink (LoRA) — the rest was reused."
    panel = studio.prompt_panel
    assert panel.prompt.text() == "a red fox, <lora:fox_style:0.8>, <lora:ink:1>"
    assert panel.clip_skip.value() == 2 and panel.steps.value() == 12


def test_the_model_settings_dialog_keeps_a_clip_skip_default(qtbot, tmp_path):
    model = tmp_path / "anime.safetensors"
    model.write_bytes(b"x")
    dialog = ModelSettingsDialog(Path(model), {"clip_skip": 2})
    qtbot.addWidget(dialog)
    assert dialog.values()["clip_skip"] == 2
    dialog.clip_skip.setValue(0)
    assert dialog.values()["clip_skip"] is None and dialog.clip_skip.text().startswith("No default")
