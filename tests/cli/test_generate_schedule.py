"""``ldm-studio generate --schedule`` / ``--tcd-gamma``: written into the PNG, refused in one line."""

from __future__ import annotations

import pytest
from PIL import Image

from ldm_studio.cli import main


def run(tiny_sd_folder, tmp_path, *extra: str) -> int:
    base = ["generate", "--model", str(tiny_sd_folder), "--prompt", "a cat", "--seed", "3", "--steps", "2"]
    return main([*base, *extra, "--out", str(tmp_path)])


def test_schedule_and_tcd_gamma_reach_the_png(tiny_sd_folder, tmp_path, capsys):
    assert (
        run(tiny_sd_folder, tmp_path / "a", "--sampler", "Euler", "--schedule", "SGM Uniform", "--cfg", "1")
        == 0
    )
    with Image.open(capsys.readouterr().out.split()[0]) as image:
        assert "Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1," in image.info["parameters"]
    assert run(tiny_sd_folder, tmp_path / "b", "--sampler", "TCD", "--tcd-gamma", "0.5", "--cfg", "1") == 0
    with Image.open(capsys.readouterr().out.split()[0]) as image:
        assert "Sampler: TCD, TCD gamma: 0.5, CFG scale: 1," in image.info["parameters"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sampler", "LCM", "--schedule", "Karras"], "the LCM sampler cannot use the Karras schedule type"),
        (["--sampler", "DPM++ 2M Karras", "--schedule", "Beta"], "already names its schedule (Karras)"),
        (["--sampler", "Euler", "--tcd-gamma", "0.2"], "--tcd-gamma only applies to the TCD sampler"),
        (["--sampler", "TCD", "--tcd-gamma", "1.5"], "--tcd-gamma must be between 0 and 1"),
    ],
)
def test_pairings_that_cannot_work_are_refused_in_one_line(
    tiny_sd_folder, tmp_path, capsys, options, message
):
    assert run(tiny_sd_folder, tmp_path, *options) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_an_unknown_schedule_name_is_an_argparse_error(tiny_sd_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(tiny_sd_folder, tmp_path, "--schedule", "Uniformish")
    assert exit_info.value.code == 2
    assert "invalid choice: 'Uniformish'" in capsys.readouterr().err


def test_few_step_takes_the_models_preset_and_info_names_it(tiny_sd_folder, tmp_path, capsys):
    lightning = tmp_path / "tiny-lightning-2step"
    lightning.symlink_to(tiny_sd_folder, target_is_directory=True)
    args = ["generate", "--model", str(lightning), "--prompt", "a cat", "--seed", "3", "--few-step"]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "Lightning model: Euler SGM Uniform, 2 steps, CFG off" in captured.err
    with Image.open(captured.out.split()[0]) as image:
        assert (
            "Steps: 2, Sampler: Euler, Schedule type: SGM Uniform, CFG scale: 1," in image.info["parameters"]
        )
    assert main(["info", str(lightning), "--no-hash"]) == 0
    assert "Few-step:    Lightning (name): Euler SGM Uniform, 2 steps, CFG off" in capsys.readouterr().out


def test_few_step_on_an_ordinary_model_says_so_and_a_lora_can_bring_it(tiny_sd_folder, tmp_path, capsys):
    base = [
        "generate",
        "--model",
        str(tiny_sd_folder),
        "--prompt",
        "a cat",
        "--few-step",
        "--out",
        str(tmp_path),
    ]
    assert main(base) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a few-step model that LDM Studio recognises" in err[0]
    assert main([*base, "--lora", "lcm-lora-sdv1-5"]) != 0  # no such LoRA here: it fails after saying
    assert "LCM LoRA: LCM, 4 steps, CFG 1.5" in capsys.readouterr().err
