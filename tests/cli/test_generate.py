"""``ldm-studio generate``: PNG paths on stdout with their settings inside, one-line errors, threads."""

from __future__ import annotations

import torch
from PIL import Image

from ldm_studio.cli import main
from ldm_studio.engine.device import default_cpu_threads


def test_generate_writes_pngs_that_carry_their_settings(tiny_sd_folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["generate", "--model", str(tiny_sd_folder), "--prompt", "a red square", "--seed", "41"]
    assert main([*args, "--steps", "2", "--batch", "2", "--out", str(out)]) == 0
    paths = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["41-a-red-square.png", "42-a-red-square.png"]
    with Image.open(paths[1]) as image:
        parameters = image.info["parameters"]
    assert parameters.startswith("a red square\n") and "Seed: 42" in parameters and "Steps: 2" in parameters


def test_generate_names_a_missing_model_in_one_line(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["generate", "--model", str(missing), "--prompt", "x", "--out", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0] and "Traceback" not in err[0]


def test_generate_uses_all_cores_but_one_unless_told(tiny_sd_folder, tmp_path, monkeypatch):
    before = torch.get_num_threads()
    try:
        base = ["generate", "--model", str(tiny_sd_folder), "--prompt", "x", "--steps", "1"]
        assert main([*base, "--out", str(tmp_path / "a")]) == 0
        assert torch.get_num_threads() == default_cpu_threads()
        assert main([*base, "--threads", "3", "--out", str(tmp_path / "b")]) == 0
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_the_default_leaves_one_core_free_and_never_drops_to_zero():
    assert [default_cpu_threads(cores) for cores in (1, 2, 8)] == [1, 1, 7]
