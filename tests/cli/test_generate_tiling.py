"""``ldm-studio generate --tiling --tiled-vae …``: the PNG says what was done; bad values are one line."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from ldm_studio.cli import main
from ldm_studio.gallery.metadata import read_metadata


def base(tiny_sd_folder) -> list[str]:
    return ["generate", "--model", str(tiny_sd_folder), "--prompt", "tiles", "--seed", "3", "--steps", "2",
            "--width", "64", "--height", "64"]  # fmt: skip


def test_tiling_and_always_tiled_vae_are_recorded(tiny_sd_folder, tmp_path, capsys):
    assert main([*base(tiny_sd_folder), "--tiling", "--tiled-vae", "always", "--out", str(tmp_path)]) == 0
    path = capsys.readouterr().out.split()[0]
    with Image.open(path) as image:
        assert "Tiling: True" in image.info["parameters"]
        ours = json.loads(image.info["ldm-studio"])
    assert ours["extra"]["vae_tiling"]["tiled"] is True
    assert ours["request"]["extras"]["tiled_vae"] == "always"
    assert read_metadata(path).request.tiling is True


def test_defaults_write_no_tiling_and_decode_untiled_when_it_fits(tiny_sd_folder, tmp_path, capsys):
    assert main([*base(tiny_sd_folder), "--out", str(tmp_path)]) == 0
    path = capsys.readouterr().out.split()[0]
    with Image.open(path) as image:
        assert "Tiling" not in image.info["parameters"]
        ours = json.loads(image.info["ldm-studio"])
    assert ours["extra"]["vae_tiling"]["mode"] == "auto"
    assert ours["extra"]["vae_tiling"]["tiled"] is False


def test_an_unknown_tiled_vae_mode_is_refused_in_one_line(tiny_sd_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*base(tiny_sd_folder), "--tiled-vae", "sometimes", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "invalid choice: 'sometimes'" in capsys.readouterr().err
