"""``ldm-studio generate --hires-…``: a larger PNG whose A1111 text names the hires fix; one-line errors."""

from __future__ import annotations

from PIL import Image

from ldm_studio.cli import main
from ldm_studio.gallery.metadata import read_metadata


def base(tiny_sd_folder) -> list[str]:
    return [
        "generate",
        "--model",
        str(tiny_sd_folder),
        "--prompt",
        "a red square",
        "--seed",
        "3",
        "--steps",
        "2",
    ]


def test_hires_scale_writes_the_larger_image_with_its_settings(tiny_sd_folder, tmp_path, capsys):
    args = [*base(tiny_sd_folder), "--width", "32", "--height", "32", "--hires-scale", "2"]
    args += [
        "--hires-steps",
        "1",
        "--hires-strength",
        "0.4",
        "--hires-upscaler",
        "Lanczos",
        "--hires-cfg",
        "4",
    ]
    assert main([*args, "--out", str(tmp_path)]) == 0
    path = capsys.readouterr().out.split()[0]
    with Image.open(path) as image:
        assert image.size == (64, 64)
        parameters = image.info["parameters"]
    assert "Size: 32x32" in parameters
    assert "Denoising strength: 0.4, Hires CFG Scale: 4, Hires upscale: 2, Hires steps: 1" in parameters
    assert parameters.endswith("Hires upscaler: Lanczos") or "Hires upscaler: Lanczos," in parameters
    hires = read_metadata(path).request.hires
    assert (hires.scale, hires.steps, hires.strength, hires.guidance) == (2.0, 1, 0.4, 4.0)


def test_hires_size_and_sampler(tiny_sd_folder, tmp_path, capsys):
    args = [*base(tiny_sd_folder), "--width", "32", "--height", "48", "--hires-size", "48x48"]
    args += ["--hires-steps", "1", "--hires-sampler", "DDIM", "--hires-prompt", "a blue square"]
    assert main([*args, "--out", str(tmp_path)]) == 0
    path = capsys.readouterr().out.split()[0]
    with Image.open(path) as image:
        assert image.size == (48, 48)
        parameters = image.info["parameters"]
    assert "Hires sampler: DDIM, Hires prompt: a blue square, Hires resize: 48x48" in parameters
    hires = read_metadata(path).hires
    assert (hires.resize, hires.sampler, hires.prompt) == ((48, 48), "DDIM", "a blue square")


def test_a_hires_sampler_without_the_schedule_type_falls_back_to_automatic(tiny_sd_folder, tmp_path, capsys):
    args = [*base(tiny_sd_folder), "--width", "32", "--height", "32", "--sampler", "Euler"]
    args += [
        "--schedule",
        "SGM Uniform",
        "--hires-scale",
        "2",
        "--hires-steps",
        "1",
        "--hires-sampler",
        "LCM",
    ]
    assert main([*args, "--out", str(tmp_path)]) == 0  # A1111 falls back rather than refusing
    path = capsys.readouterr().out.split()[0]
    with Image.open(path) as image:
        assert image.size == (64, 64)
        parameters = image.info["parameters"]
    assert "Schedule type: SGM Uniform" in parameters
    assert "Hires sampler: LCM, Hires schedule type: Automatic" in parameters


def test_hires_mistakes_are_usage_errors(tiny_sd_folder, tmp_path, capsys):
    for extra, words in (
        (["--hires-steps", "5"], "--hires-steps needs --hires-scale or --hires-size"),
        (["--hires-size", "big"], "WIDTHxHEIGHT"),
        (["--hires-scale", "0.5"], "between 1 and 8"),
        (["--hires-scale", "2", "--hires-sampler", "Nope"], "not a sampler"),
    ):
        assert main([*base(tiny_sd_folder), *extra, "--out", str(tmp_path)]) == 2, extra
        error = capsys.readouterr().err
        assert words in error and "Traceback" not in error, (extra, error)
