"""The source panel's Outpaint row: its values reach the request (extended size included), a reused
request shows them again, and all sides at 0 means no outpaint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ldm_studio.engine.outpaint import Outpaint
from ldm_studio.engine.request import GenerationRequest
from ldm_studio.ui.source_panel import SourceSettings
from tests.ui import test_source_panel

REQUEST = GenerationRequest(prompt="a fox", seed=1, width=64, height=64)
panel = test_source_panel.panel  # the fixture: a shown source panel


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (48, 70, 3), dtype=np.uint8)).save(path)
    return path


def test_the_outpaint_box_feeds_the_request_and_its_size(panel, photo, qtbot):
    assert panel.set_image(photo)
    assert panel.apply_to(REQUEST).outpaint is None  # all sides 0: plain image to image
    box = panel.outpaint_box
    assert box.result_label.text().startswith("Off")
    with qtbot.waitSignal(panel.changed):
        box.sides["left"].setValue(30)
    box.sides["right"].setValue(16)
    box.fill.setCurrentIndex(box.fill.findData("noise"))
    request = panel.apply_to(REQUEST)
    assert request.outpaint == Outpaint(left=32, right=16, fill="noise")
    assert (request.width, request.height) == (64 + 48, 48)  # the source (70 -> 64) plus the sides
    assert box.result_label.text() == "Result 112 × 48"
    panel.set_expanded(False)
    assert "outpaint" in panel.summary.text()


def test_a_reused_request_shows_its_outpaint_and_clearing_drops_it(panel, photo):
    reused = GenerationRequest(
        "a fox",
        width=64,
        height=80,
        init_image=str(photo),
        strength=0.6,
        outpaint=Outpaint(top=16, bottom=16, fill="mirror", feather=4),
    )
    assert panel.set_source(SourceSettings.from_request(reused))
    assert panel.outpaint_box.outpaint() == reused.outpaint  # the feather it cannot edit is kept
    assert panel.apply_to(REQUEST).replace(prompt="a fox", seed=None) == reused.replace(
        extras={"resize_mode": "resize"}
    )
    panel.clear()
    assert panel.apply_to(REQUEST.replace(init_image="x.png", outpaint=Outpaint(left=8))).outpaint is None
