"""``ldm-studio generate --outpaint``: the extended size, the record, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ldm_studio.cli import main


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "source.png"
    Image.fromarray(np.full((24, 32, 3), (200, 40, 40), dtype=np.uint8)).save(path)
    return path


def generate(tiny_sd_folder, tmp_path, *extra):
    args = ["generate", "--model", str(tiny_sd_folder), "--prompt", "x", "--seed", "3", "--steps", "2"]
    return main([*args, "--out", str(tmp_path / "out"), *extra])


def test_outpaint_writes_the_extended_image_and_records_it(tiny_sd_folder, tmp_path, source, capsys):
    assert (
        generate(tiny_sd_folder, tmp_path, "--init-image", str(source), "--outpaint", "left=16,right=8") == 0
    )
    path = capsys.readouterr().out.split()[0]
    with Image.open(path) as image:
        assert image.size == (32 + 24, 24)
        chunks = dict(image.text)
    from ldm_studio.gallery.metadata import metadata_from_chunks

    request = metadata_from_chunks(chunks, (56, 24)).request
    assert request is not None and request.outpaint.text() == "left=16,right=8"
    assert (request.width, request.height) == (56, 24)
    assert json.loads(chunks["ldm-studio"])["extra"]["outpaint"] == "left=16,right=8"


def test_an_aspect_ratio_and_an_explicit_size(tiny_sd_folder, tmp_path, source, capsys):
    assert generate(tiny_sd_folder, tmp_path, "--init-image", str(source), "--outpaint", "aspect=2") == 0
    with Image.open(capsys.readouterr().out.split()[0]) as image:
        assert image.size == (48, 24)
    sized = ["--width", "64", "--height", "32", "--init-image", str(source), "--outpaint", "top=8"]
    assert generate(tiny_sd_folder, tmp_path, *sized) == 0
    with Image.open(capsys.readouterr().out.split()[0]) as image:
        assert image.size == (64, 32)  # the source fitted into 64 x 24 below the new strip


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--outpaint", "left=16"], "--outpaint needs --init-image"),
        (["--init-image", "{source}", "--outpaint", "left=abc"], "whole number"),
        (["--init-image", "{source}", "--outpaint", "wide=8"], "unknown outpaint key"),
        (["--init-image", "{missing}", "--outpaint", "left=8"], "does not exist"),
        (["--init-image", "{source}", "--outpaint", "left=64", "--width", "64", "--height", "64"], "no room"),
    ],
)
def test_bad_outpaints_are_one_line_errors(tiny_sd_folder, tmp_path, source, capsys, extra, says):
    extra = [item.format(source=source, missing=tmp_path / "nope.png") for item in extra]
    assert generate(tiny_sd_folder, tmp_path, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and "Traceback" not in err[0]
