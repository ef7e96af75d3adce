"""The parts picker's rows: which parts a FLUX single file needs and where each comes from."""

from __future__ import annotations

import shutil

import pytest

from ldm_studio.app.model_parts import flow_family, part_problem, part_rows
from tests.flow_layouts import transformer_apart


@pytest.fixture(scope="module")
def bfl(tmp_path_factory):
    model, parts, _folder = transformer_apart(tmp_path_factory.mktemp("parts-rows"))
    return model, parts


def test_rows_say_missing_then_chosen_then_beside(bfl, tmp_path):
    model, parts = bfl
    assert flow_family(model) == "flux"
    rows = part_rows(model)
    assert [row.part for row in rows] == ["clip_l", "t5xxl", "vae"]
    assert all(row.missing and row.status == "missing" for row in rows)
    assert [(row.title, row.file_name) for row in rows][0] == ("CLIP-L text encoder", "clip_l.safetensors")
    chosen = part_rows(model, {"ae": parts / "ae.safetensors"})
    assert [row.status for row in chosen] == ["missing", "missing", "chosen: ae.safetensors"]
    beside = tmp_path / "flux1-dev.safetensors"
    shutil.copy(model, beside)
    shutil.copy(parts / "clip_l.safetensors", tmp_path / "clip_l.safetensors")
    assert part_rows(beside)[0].status == "beside the model: clip_l.safetensors"


def test_a_wrong_file_gets_the_sentence(bfl):
    model, parts = bfl
    assert part_problem("vae", parts / "ae.safetensors") == ""
    assert "is not the 16-channel FLUX VAE" in part_problem("vae", parts / "clip_l.safetensors")
    assert "does not exist" in part_problem("t5xxl", parts / "nope.safetensors")
    assert part_rows(parts / "ae.safetensors") == [] and flow_family(parts / "ae.safetensors") is None
