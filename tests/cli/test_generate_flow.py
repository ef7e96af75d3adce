"""``ldm-studio generate`` and ``info`` with a FLUX.1 dev diffusers folder (tiny random weights)."""

from __future__ import annotations

from PIL import Image

from ldm_studio.cli import main
from tests.flow_models import build_tiny_flux


def test_generate_and_info_with_a_flux_folder(tmp_path, capsys):
    folder = build_tiny_flux(tmp_path / "tiny-flux")
    capsys.readouterr()
    base = ["generate", "--model", str(folder), "--prompt", "a cat", "--seed", "3", "--steps", "2"]
    size = ["--width", "32", "--height", "32", "--cfg", "3.5"]
    assert main([*base, *size, "--sampler", "Euler", "--out", str(tmp_path / "out")]) == 0
    path = capsys.readouterr().out.split()[0]
    with Image.open(path) as image:
        parameters = image.info["parameters"]
        assert image.size == (32, 32)
    assert "Sampler: Euler, CFG scale: 1, Seed: 3, Size: 32x32" in parameters
    assert "Distilled CFG Scale: 3.5" in parameters
    # a noise-prediction sampler: one line that names the ones that work
    assert main([*base, *size, "--sampler", "Euler a", "--out", str(tmp_path / "no")]) != 0
    assert "choose one of Euler, Heun, DPM++ 2M, UniPC" in capsys.readouterr().err
    assert main(["info", str(folder)]) == 0
    assert "FLUX.1" in capsys.readouterr().out
